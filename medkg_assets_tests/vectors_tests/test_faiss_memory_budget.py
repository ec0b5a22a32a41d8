"""FAISS builds refuse an index that would not fit the memory budget, naming one that would."""

import numpy as np
import pytest

from medkg_assets.config.profiles import FlatIndexSpec, HnswIndexSpec, IvfPqIndexSpec
from medkg_assets.resources.faiss_store import FaissIndexResource
from medkg_assets.vectors.faiss_indexes import IndexMemoryError, check_memory_budget, estimate_index_bytes

GIB = 2**30
PUBMED = 23_900_000  # MedRAG's PubMed snippets


def test_estimates_follow_faiss_layouts():
    assert estimate_index_bytes(FlatIndexSpec(), 1000, 384) == 1000 * 384 * 4
    hnsw = estimate_index_bytes(HnswIndexSpec(type="hnsw", m=32), 1000, 384)
    assert hnsw == 1000 * (384 * 4 + 64 * 4)
    ivf = IvfPqIndexSpec(type="ivf_pq", nlist=1024, pq_m=64, pq_nbits=8)
    assert estimate_index_bytes(ivf, 1000, 384) == 1000 * (64 + 8) + 1024 * 384 * 4 + 256 * 384 * 4


def test_a_pubmed_scale_hnsw_over_budget_is_refused_naming_ivf_pq():
    with pytest.raises(IndexMemoryError) as refused:
        check_memory_budget(HnswIndexSpec(type="hnsw", m=48), PUBMED, 4096, 128 * GIB)
    message = str(refused.value)
    assert "a hnsw index over 23,900,000 × 4096-d vectors needs ≈ 373.2 GiB" in message
    assert "over the FAISS memory budget of 128.0 GiB" in message
    assert "use index type ivf_pq with pq_m=64 (≈ 1.6 GiB)" in message
    check_memory_budget(IvfPqIndexSpec(type="ivf_pq"), PUBMED, 4096, 128 * GIB)  # fits: no error


def test_an_ivf_pq_over_budget_names_a_smaller_code():
    with pytest.raises(IndexMemoryError, match=r"use index type ivf_pq with pq_m=16"):
        check_memory_budget(IvfPqIndexSpec(type="ivf_pq", pq_m=64), PUBMED, 4096, 1 * GIB)


def test_the_resource_refuses_before_building():
    vectors = np.random.default_rng(0).random((2000, 64), dtype=np.float32)
    tight = FaissIndexResource(memory_budget_gb=(2000 * 64 * 4 - 1) / GIB)
    opened = []

    def blocks():
        opened.append(1)
        return iter([vectors[:1000], vectors[1000:]])

    with pytest.raises(IndexMemoryError, match="flat index over 2,000 × 64-d"):
        tight.build(blocks, 2000, 64, FlatIndexSpec())
    assert opened == []  # refused before a single shard was read
    built = FaissIndexResource(memory_budget_gb=1.0).build(blocks, 2000, 64, FlatIndexSpec())
    assert built.index.ntotal == 2000
    assert FaissIndexResource().budget_bytes() > 0  # default: a share of this machine's RAM
