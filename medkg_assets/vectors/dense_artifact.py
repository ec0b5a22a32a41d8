"""The dense artefact: one Parquet file of vectors per chunk shard, `shards.json` and `meta.json`.

Each shard file holds `chunk_id`, `doc_id`, `content_hash` and `vector` (a fixed-size list of
float32), so DuckDB, Polars, Ray or `datasets` read the vectors without this package.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from medkg_assets.storage.shards import ShardEntry, ShardManifest, read_table
from medkg_assets.vectors.shard_outputs import load_meta


def dense_table(
    chunk_ids: Sequence[str], doc_ids: Sequence[str], content_hashes: Sequence[str], vectors: np.ndarray
) -> pa.Table:
    matrix = np.ascontiguousarray(vectors, dtype=np.float32)
    dims = matrix.shape[1] if matrix.ndim == 2 else 0
    column = pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1), pa.float32()), dims)
    return pa.table(
        {
            "chunk_id": pa.array(chunk_ids, pa.string()),
            "doc_id": pa.array(doc_ids, pa.string()),
            "content_hash": pa.array(content_hashes, pa.string()),
            "vector": column,
        }
    )


@dataclass(frozen=True)
class DenseShard:
    entry: ShardEntry
    chunk_ids: list[str]
    doc_ids: list[str]
    content_hashes: list[str]
    vectors: np.ndarray

    @classmethod
    def from_table(cls, entry: ShardEntry, table: pa.Table, dims: int) -> DenseShard:
        flat = table.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        return cls(
            entry,
            table.column("chunk_id").to_pylist(),
            table.column("doc_id").to_pylist(),
            table.column("content_hash").to_pylist(),
            np.ascontiguousarray(flat, dtype=np.float32).reshape(table.num_rows, dims),
        )


class DenseArtifact:
    """A published dense version; shards are read one at a time, or all at once for small readers."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.meta: dict[str, Any] = load_meta(directory)
        self.manifest = ShardManifest.load(directory)

    @classmethod
    def load(cls, directory: Path) -> DenseArtifact:
        return cls(directory)

    @property
    def namespace(self) -> str:
        return str(self.meta["namespace"])

    @property
    def profile(self) -> str:
        return str(self.meta["profile"])

    @property
    def fingerprint(self) -> str:
        return str(self.meta["fingerprint"])

    @property
    def model(self) -> str:
        return str(self.meta["model"])

    @property
    def dims(self) -> int:
        return int(self.meta["dims"])

    @property
    def normalized(self) -> bool:
        return bool(self.meta["normalized"])

    @property
    def cache_key(self) -> str:
        return str(self.meta["cache_key"])

    @property
    def chunk_version(self) -> str:
        return str(self.meta.get("chunk_version", ""))

    @property
    def count(self) -> int:
        return self.manifest.rows

    def documents(self) -> int:
        """Distinct documents: a document never spans shards, so per-shard counts add up."""
        return sum(
            len(set(read_table(self.directory / e.file, e.rows, self._fix, ["doc_id"]).column(0).to_pylist()))
            for e in self.manifest.shards
        )

    @property
    def _fix(self) -> str:
        where = f"{self.namespace}|{self.profile}"
        return f"rebuild dense_embeddings for {where} ({self.directory} is damaged)"

    def read_shard(self, entry: ShardEntry) -> DenseShard:
        table = read_table(self.directory / entry.file, entry.rows, self._fix)
        return DenseShard.from_table(entry, table, self.dims)

    def shard(self, name: str) -> DenseShard | None:
        """The shard of that name, if this version has it (the previous version as a row cache)."""
        for entry in self.manifest.shards:
            if entry.name == name:
                return self.read_shard(entry)
        return None

    def shards(self) -> Iterator[DenseShard]:
        for entry in self.manifest.shards:
            yield self.read_shard(entry)

    @cached_property
    def _whole(self) -> tuple[list[str], list[str], list[str], np.ndarray]:
        ids: list[str] = []
        docs: list[str] = []
        hashes: list[str] = []
        blocks = []
        for shard in self.shards():
            ids += shard.chunk_ids
            docs += shard.doc_ids
            hashes += shard.content_hashes
            blocks.append(shard.vectors)
        matrix = np.concatenate(blocks) if blocks else np.zeros((0, self.dims), dtype=np.float32)
        return ids, docs, hashes, matrix

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
    def vectors(self) -> np.ndarray:
        return self._whole[3]
