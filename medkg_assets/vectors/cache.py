"""Incremental cache: reuse vectors keyed by (chunk content hash, profile fingerprint)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class CachePlan:
    """Rows of the new output: reused from the cache, or still to be encoded (`misses`)."""

    vectors: np.ndarray  # rows for hits are filled in; rows for misses are zero
    misses: list[int]

    @property
    def hits(self) -> int:
        return len(self.vectors) - len(self.misses)

    @property
    def hit_ratio(self) -> float:
        return self.hits / len(self.vectors) if len(self.vectors) else 1.0


def plan_from_cache(
    content_hashes: list[str],
    dims: int,
    fingerprint: str,
    cached_fingerprint: str | None,
    cached_hashes: list[str],
    cached_vectors: np.ndarray | None,
) -> CachePlan:
    """Match chunks to cached vectors; a different fingerprint reuses nothing."""
    vectors = np.zeros((len(content_hashes), dims), dtype=np.float32)
    usable = cached_vectors is not None and cached_fingerprint == fingerprint
    index = {h: row for row, h in enumerate(cached_hashes)} if usable else {}
    misses = []
    for row, content_hash in enumerate(content_hashes):
        cached_row = index.get(content_hash)
        if cached_row is None or cached_vectors.shape[1] != dims:
            misses.append(row)
        else:
            vectors[row] = cached_vectors[cached_row]
    return CachePlan(vectors=vectors, misses=misses)
