"""The sparse artefact: one Parquet file of SPLADE term weights per chunk shard, and `meta.json`.

Each shard file holds `chunk_id`, `doc_id`, `content_hash`, `terms` (list of strings) and
`weights` (list of float64, same length). When sparse is disabled the artefact is a `meta.json`
saying so, with no shards, so that downstream stages can warn instead of failing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pyarrow as pa

from medkg_assets.storage.shards import ShardEntry, ShardManifest, read_table
from medkg_assets.vectors.shard_outputs import load_meta

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
class SparseShard:
    entry: ShardEntry
    chunk_ids: list[str]
    doc_ids: list[str]
    content_hashes: list[str]
    vectors: list[TermWeights]

    @classmethod
    def from_table(cls, entry: ShardEntry, table: pa.Table) -> SparseShard:
        terms, weights = table.column("terms").to_pylist(), table.column("weights").to_pylist()
        return cls(
            entry,
            table.column("chunk_id").to_pylist(),
            table.column("doc_id").to_pylist(),
            table.column("content_hash").to_pylist(),
            [dict(zip(t, w, strict=True)) for t, w in zip(terms, weights, strict=True)],
        )


class SparseArtifact:
    """A published sparse version (or the marker of a disabled stage)."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.meta: dict[str, Any] = load_meta(directory)
        self.manifest = (
            ShardManifest.load(directory)
            if self.enabled
            else ShardManifest(shard_count=0, max_chunks_per_shard=0, shards=[])
        )

    @classmethod
    def load(cls, directory: Path) -> SparseArtifact:
        return cls(directory)

    @property
    def enabled(self) -> bool:
        return bool(self.meta["enabled"])

    @property
    def disabled_reason(self) -> str:
        return str(self.meta.get("disabled_reason", ""))

    @property
    def cache_key(self) -> str:
        return str(self.meta.get("cache_key", ""))

    @property
    def chunk_version(self) -> str:
        return str(self.meta.get("chunk_version", ""))

    @property
    def model(self) -> str:
        return str(self.meta.get("model", ""))

    @property
    def count(self) -> int:
        return self.manifest.rows

    def read_shard(self, entry: ShardEntry) -> SparseShard:
        fix = f"rebuild sparse_vectors (the version {self.directory} is damaged)"
        return SparseShard.from_table(entry, read_table(self.directory / entry.file, entry.rows, fix))

    def shard(self, name: str) -> SparseShard | None:
        for entry in self.manifest.shards:
            if entry.name == name:
                return self.read_shard(entry)
        return None

    def shards(self) -> Iterator[SparseShard]:
        for entry in self.manifest.shards:
            yield self.read_shard(entry)

    @cached_property
    def _whole(self) -> tuple[list[str], list[str], list[str], list[TermWeights]]:
        ids: list[str] = []
        docs: list[str] = []
        hashes: list[str] = []
        vectors: list[TermWeights] = []
        for shard in self.shards():
            ids += shard.chunk_ids
            docs += shard.doc_ids
            hashes += shard.content_hashes
            vectors += shard.vectors
        return ids, docs, hashes, vectors

    @property
    def chunk_ids(self) -> list[str]:
        return self._whole[0]

    @property
    def doc_ids(self) -> list[str]:
        return self._whole[1]

    @property
    def content_hashes(self) -> list[str]:
        return self._whole[2]

    @property
    def vectors(self) -> list[TermWeights]:
        return self._whole[3]
