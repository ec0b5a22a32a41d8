"""FAISS indexes from a profile's index spec: exact flat, HNSW, IVF-PQ; inner-product metric."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import faiss
import numpy as np

from medkg_assets.config.profiles import FlatIndexSpec, HnswIndexSpec, IndexSpec, IvfPqIndexSpec


@dataclass
class BuiltIndex:
    index: faiss.Index
    kind: str
    on_gpu: bool
    notes: list[str]


def gpu_count() -> int:
    """GPUs faiss can use (0 with faiss-cpu)."""
    return faiss.get_num_gpus() if hasattr(faiss, "StandardGpuResources") else 0


def _ivf_pq_shape(spec: IvfPqIndexSpec, n: int, dims: int) -> tuple[int, int, list[str]]:
    """Shrink nlist so every list gets ≥ 39 training points; pq_m must divide dims."""
    notes = []
    nlist = max(1, min(spec.nlist, n // 39))
    if nlist != spec.nlist:
        notes.append(f"nlist {spec.nlist} → {nlist} for {n} vectors (≥ 39 training points per list)")
    pq_m = spec.pq_m
    while dims % pq_m:
        pq_m -= 1
    if pq_m != spec.pq_m:
        notes.append(f"pq_m {spec.pq_m} → {pq_m} (must divide dims {dims})")
    return nlist, pq_m, notes


def build_index(vectors: np.ndarray, spec: IndexSpec, use_gpu: bool = False, seed: int = 0) -> BuiltIndex:
    """Build the index the spec asks for from one matrix; row i of `vectors` gets id i."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    return build_index_from_blocks(
        lambda: iter([vectors]), len(vectors), vectors.shape[1], spec, use_gpu, seed
    )


def build_index_from_blocks(
    blocks: Callable[[], Iterator[np.ndarray]],
    n: int,
    dims: int,
    spec: IndexSpec,
    use_gpu: bool = False,
    seed: int = 0,
) -> BuiltIndex:
    """Build the index from blocks of rows (one shard at a time), the i-th row overall getting id i.

    `blocks()` is called once to draw the IVF training sample and once to add the rows, so only
    one block and the index are in memory. Flat and HNSW indexes take the rows block by block.
    """
    notes: list[str] = []
    if isinstance(spec, HnswIndexSpec):
        # faiss has no GPU HNSW; it is built on the CPU even when a GPU is present.
        hnsw_index = faiss.IndexHNSWFlat(dims, spec.m, faiss.METRIC_INNER_PRODUCT)
        hnsw_index.hnsw.efConstruction = spec.ef_construction
        hnsw_index.hnsw.efSearch = spec.ef_search
        for block in blocks():
            hnsw_index.add(np.ascontiguousarray(block, dtype=np.float32))
        return BuiltIndex(hnsw_index, "hnsw", False, notes)
    index: faiss.Index
    if isinstance(spec, FlatIndexSpec):
        index = faiss.IndexFlatIP(dims)
        kind = "flat"
    else:
        min_points = 2**spec.pq_nbits
        if n < min_points:
            raise ValueError(
                f"ivf_pq with pq_nbits={spec.pq_nbits} needs at least {min_points} vectors to train, "
                f"got {n}; use a flat or hnsw index for a collection this small"
            )
        nlist, pq_m, notes = _ivf_pq_shape(spec, n, dims)
        quantizer = faiss.IndexFlatIP(dims)
        ivf_index = faiss.IndexIVFPQ(quantizer, dims, nlist, pq_m, spec.pq_nbits, faiss.METRIC_INNER_PRODUCT)
        ivf_index.nprobe = min(spec.nprobe, nlist)
        index = ivf_index
        kind = "ivf_pq"
    on_gpu = use_gpu and gpu_count() > 0
    working: faiss.Index = index
    if on_gpu:
        resources = faiss.StandardGpuResources()
        working = faiss.index_cpu_to_gpu(resources, 0, index)
    if isinstance(spec, IvfPqIndexSpec):
        working.train(training_sample(blocks, n, spec.train_sample, seed))
    for block in blocks():
        working.add(np.ascontiguousarray(block, dtype=np.float32))
    if on_gpu:
        index = faiss.index_gpu_to_cpu(working)
    return BuiltIndex(index, kind, on_gpu, notes)


def training_sample(blocks: Callable[[], Iterator[np.ndarray]], n: int, size: int, seed: int) -> np.ndarray:
    """`size` rows drawn uniformly from all blocks (all rows when there are fewer), in row order."""
    if n <= size:
        return np.concatenate([np.asarray(b, dtype=np.float32) for b in blocks()])
    wanted = np.sort(np.random.default_rng(seed).choice(n, size, replace=False))
    picked, offset = [], 0
    for block in blocks():
        inside = wanted[(wanted >= offset) & (wanted < offset + len(block))] - offset
        picked.append(np.asarray(block, dtype=np.float32)[inside])
        offset += len(block)
    return np.ascontiguousarray(np.concatenate(picked))


def exact_neighbours(blocks: Callable[[], Iterator[np.ndarray]], queries: np.ndarray, k: int) -> np.ndarray:
    """Row ids of the exact top-k inner products over all blocks, one block in memory at a time."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    best_scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_ids = np.zeros((len(queries), 0), dtype=np.int64)
    offset = 0
    for block in blocks():
        flat = faiss.IndexFlatIP(queries.shape[1])
        flat.add(np.ascontiguousarray(block, dtype=np.float32))
        scores, ids = flat.search(queries, min(k, len(block)))
        best_scores = np.concatenate([best_scores, scores], axis=1)
        best_ids = np.concatenate([best_ids, np.where(ids >= 0, ids + offset, -1)], axis=1)
        keep = np.argsort(-best_scores, axis=1, kind="stable")[:, :k]
        best_scores = np.take_along_axis(best_scores, keep, axis=1)
        best_ids = np.take_along_axis(best_ids, keep, axis=1)
        offset += len(block)
    return best_ids


def self_recall_at_k(
    index: faiss.Index, vectors: np.ndarray, k: int = 10, sample: int = 200, seed: int = 0
) -> float:
    """Recall@k of `index` against exact search, with sampled stored vectors as queries."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    return self_recall_from_blocks(index, lambda: iter([vectors]), len(vectors), k, sample, seed)


def self_recall_from_blocks(
    index: faiss.Index,
    blocks: Callable[[], Iterator[np.ndarray]],
    n: int,
    k: int = 10,
    sample: int = 200,
    seed: int = 0,
) -> float:
    """`self_recall_at_k` over vectors read block by block (one shard at a time)."""
    if n == 0:
        return 1.0
    k = min(k, n)
    queries = training_sample(blocks, n, sample, seed)
    truth = exact_neighbours(blocks, queries, k)
    found = index.search(queries, k)[1]
    hits = sum(len(set(t) & set(f)) for t, f in zip(truth, found, strict=True))
    return hits / (len(queries) * k)


class IndexMemoryError(ValueError):
    """The index the profile asks for would not fit the memory budget; nothing was built."""


def estimate_index_bytes(spec: IndexSpec, n: int, dims: int) -> int:
    """What the built index holds in memory (FAISS's own layouts, small constant overheads left out).

    flat: the vectors (n·d·4). HNSW: the vectors plus 2·M level-0 links of 4 bytes per vector.
    IVF-PQ: pq_m·nbits/8 code bytes and an 8-byte id per vector, nlist centroids, the PQ tables.
    """
    if isinstance(spec, FlatIndexSpec):
        return n * dims * 4
    if isinstance(spec, HnswIndexSpec):
        return n * (dims * 4 + 2 * spec.m * 4)
    codes = n * (spec.pq_m * spec.pq_nbits // 8 + 8)
    return codes + spec.nlist * dims * 4 + (1 << spec.pq_nbits) * dims * 4


def check_memory_budget(spec: IndexSpec, n: int, dims: int, budget_bytes: int) -> None:
    """Refuse an index over the budget, naming the index type (and its size) that would fit."""
    needed = estimate_index_bytes(spec, n, dims)
    if needed <= budget_bytes:
        return
    gib = 2**30
    alternative = IvfPqIndexSpec(type="ivf_pq")
    if isinstance(spec, IvfPqIndexSpec):
        alternative = spec.model_copy(update={"pq_m": max(1, spec.pq_m // 4)})
    fits = estimate_index_bytes(alternative, n, dims)
    advice = (
        f"use index type ivf_pq with pq_m={alternative.pq_m} (≈ {fits / gib:.1f} GiB)"
        if fits <= budget_bytes
        else f"even ivf_pq with pq_m={alternative.pq_m} needs ≈ {fits / gib:.1f} GiB: raise the budget"
    )
    raise IndexMemoryError(
        f"a {spec.type} index over {n:,} × {dims}-d vectors needs ≈ {needed / gib:.1f} GiB, over the FAISS "
        f"memory budget of {budget_bytes / gib:.1f} GiB; {advice} in the profile's `index:`, or raise "
        "MEDKG_FAISS_MEMORY_BUDGET_GB"
    )
