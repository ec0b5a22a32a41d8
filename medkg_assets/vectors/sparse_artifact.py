"""The sparse artefact: one Parquet file of SPLADE term weights per chunk shard, and `meta.json`.

Each shard file holds `chunk_id`, `doc_id`, `content_hash`, `terms` (list of strings) and
`weights` (list of float64, same length). When sparse is disabled the artefact is a `meta.json`
saying so, with no shards, so that downstream stages can warn instead of failing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import pyarrow as pa

from medkg_assets.storage.shards import ShardEntry
from medkg_assets.vectors.shard_outputs import RowsShard, ShardedArtifact, row_columns

TermWeights = dict[str, float]


def sparse_table(
    chunk_ids: Sequence[str],
    doc_ids: Sequence[str],
    content_hashes: Sequence[str],
    vectors: Sequence[TermWeights],
) -> pa.Table:
    return pa.table(
        {
            "chunk_id": pa.array(chunk_ids, pa.string()),
            "doc_id": pa.array(doc_ids, pa.string()),
            "content_hash": pa.array(content_hashes, pa.string()),
            "terms": pa.array([list(v) for v in vectors], pa.list_(pa.string())),
            "weights": pa.array([list(v.values()) for v in vectors], pa.list_(pa.float64())),
        }
    )


@dataclass(frozen=True)
class SparseShard(RowsShard):
    vectors: list[TermWeights]


class SparseArtifact(ShardedArtifact[SparseShard]):
    """A published sparse version (or the marker of a disabled stage)."""

    stage = "sparse_vectors"

    def from_table(self, entry: ShardEntry, table: pa.Table) -> SparseShard:
        terms, weights = table.column("terms").to_pylist(), table.column("weights").to_pylist()
        vectors = [dict(zip(t, w, strict=True)) for t, w in zip(terms, weights, strict=True)]
        return SparseShard(entry, *row_columns(table), vectors)

    @property
    def enabled(self) -> bool:
        return bool(self.meta["enabled"])

    @property
    def disabled_reason(self) -> str:
        return str(self.meta.get("disabled_reason", ""))

    @property
    def model(self) -> str:
        return str(self.meta.get("model", ""))

    @cached_property
    def vectors(self) -> list[TermWeights]:
        """Every term map in shard order (small readers only)."""
        return [v for shard in self.shards() for v in shard.vectors]
