"""Incremental cache: reuse outputs keyed by (chunk content hash, profile fingerprint).

The cache is the stage's previous artefact: rows whose content hash it already holds under
the same fingerprint are reused; everything else is encoded; rows for removed chunks simply
do not appear in the new output.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from numpy.typing import NDArray

Item = TypeVar("Item")


@dataclass
class CachePlan:
    reuse: dict[int, int]  # output row → row of the cached artefact
    misses: list[int]  # output rows to encode
    total: int

    @property
    def hits(self) -> int:
        return len(self.reuse)

    @property
    def hit_ratio(self) -> float:
        return self.hits / self.total if self.total else 1.0

    def texts_to_encode(self, content_hashes: Sequence[str]) -> dict[str, int]:
        """content hash → first missing row with it: each distinct text is encoded once."""
        unique: dict[str, int] = {}
        for row in self.misses:
            unique.setdefault(content_hashes[row], row)
        return unique


def plan_cache(
    content_hashes: Sequence[str],
    fingerprint: str,
    cached_fingerprint: str | None,
    cached_hashes: Sequence[str],
) -> CachePlan:
    """Match chunks to cached rows; a different fingerprint reuses nothing."""
    index = {h: row for row, h in enumerate(cached_hashes)} if cached_fingerprint == fingerprint else {}
    reuse, misses = {}, []
    for row, content_hash in enumerate(content_hashes):
        if content_hash in index:
            reuse[row] = index[content_hash]
        else:
            misses.append(row)
    return CachePlan(reuse=reuse, misses=misses, total=len(content_hashes))


def assemble(
    plan: CachePlan,
    content_hashes: Sequence[str],
    cached_items: Sequence[Item] | NDArray[Any],
    encoded_by_hash: dict[str, Item],
) -> list[Item]:
    """The new output in chunk order: cached rows where reused, fresh encodings elsewhere."""
    return [
        cached_items[plan.reuse[row]] if row in plan.reuse else encoded_by_hash[content_hash]
        for row, content_hash in enumerate(content_hashes)
    ]
