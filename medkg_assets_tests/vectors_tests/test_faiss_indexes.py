"""FAISS index types from the profile spec, id mapping and self-recall."""

import numpy as np
import pytest

from medkg_assets.config.profiles import FlatIndexSpec, HnswIndexSpec, IvfPqIndexSpec
from medkg_assets.vectors.faiss_artifact import FaissArtifact
from medkg_assets.vectors.faiss_indexes import build_index, self_recall_at_k


def clustered(n=2000, dims=32, clusters=40, seed=0):
    """Unit vectors around cluster centres: neighbourhood structure like real embeddings."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dims))
    vectors = centres[rng.integers(0, clusters, n)] + 0.3 * rng.normal(size=(n, dims))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def test_flat_is_exact_inner_product_and_ids_are_rows():
    vectors = clustered(200)
    built = build_index(vectors, FlatIndexSpec())
    scores, ids = built.index.search(vectors[:5], 1)
    assert built.kind == "flat" and ids[:, 0].tolist() == [0, 1, 2, 3, 4]
    assert np.allclose(scores[:, 0], 1.0, atol=1e-5)
    assert self_recall_at_k(built.index, vectors) == 1.0


def test_hnsw_takes_metric_and_parameters_from_the_spec():
    vectors = clustered()
    built = build_index(vectors, HnswIndexSpec(type="hnsw", m=16, ef_construction=100, ef_search=64))
    assert built.kind == "hnsw" and built.index.metric_type == 0  # METRIC_INNER_PRODUCT
    assert built.index.hnsw.efSearch == 64 and built.index.hnsw.efConstruction == 100
    assert self_recall_at_k(built.index, vectors) >= 0.95


def test_ivf_pq_trains_on_a_sample_and_adapts_nlist():
    vectors = clustered(3000)
    spec = IvfPqIndexSpec(type="ivf_pq", nlist=1024, pq_m=8, pq_nbits=8, train_sample=2500, nprobe=16)
    built = build_index(vectors, spec)
    assert built.kind == "ivf_pq" and built.index.ntotal == 3000
    assert built.index.nlist == 3000 // 39 and any("nlist" in note for note in built.notes)


def test_ivf_pq_refuses_too_few_vectors():
    with pytest.raises(ValueError, match="at least 256 vectors"):
        build_index(clustered(100), IvfPqIndexSpec(type="ivf_pq", pq_m=8))


def test_artifact_round_trip_keeps_ids_and_nprobe(tmp_path):
    vectors = clustered(3000)
    built = build_index(vectors, IvfPqIndexSpec(type="ivf_pq", nlist=16, pq_m=8, nprobe=4))
    FaissArtifact(built.index, [f"c{i}" for i in range(3000)], {"nprobe": 4}).write(tmp_path)
    loaded = FaissArtifact.load(tmp_path)
    assert loaded.chunk_ids[7] == "c7" and loaded.index.nprobe == 4
