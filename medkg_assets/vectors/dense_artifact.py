"""The dense artefact: one Parquet file of vectors per chunk shard, `shards.json` and `meta.json`.

Each shard file holds `chunk_id`, `doc_id`, `content_hash` and `vector` (a fixed-size list of
float32), so DuckDB, Polars, Ray or `datasets` read the vectors without this package.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from medkg_assets.storage.shards import ShardEntry, ShardError
from medkg_assets.vectors.shard_outputs import RowsShard, ShardedArtifact, row_columns


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
class DenseShard(RowsShard):
    vectors: np.ndarray


class DenseArtifact(ShardedArtifact[DenseShard]):
    """A published dense version."""

    stage = "dense_embeddings"

    def from_table(self, entry: ShardEntry, table: pa.Table) -> DenseShard:
        flat = table.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        matrix = np.ascontiguousarray(flat, dtype=np.float32).reshape(table.num_rows, self.dims)
        return DenseShard(entry, *row_columns(table), matrix)

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

    def stored_dims(self) -> set[int]:
        """The vector length each shard file's schema declares (its footer only is read)."""
        dims = set()
        for entry in self.manifest.shards:
            try:
                field = pq.read_schema(self.directory / entry.file).field("vector")
            except (pa.ArrowException, OSError, KeyError) as error:
                path = self.directory / entry.file
                raise ShardError(f"shard file {path} is unreadable ({error}); {self.fix}") from error
            dims.add(int(field.type.list_size))
        return dims

    @cached_property
    def vectors(self) -> np.ndarray:
        """Every vector in shard order (small readers only: checks, the summary's hash)."""
        blocks = [shard.vectors for shard in self.shards()]
        return np.concatenate(blocks) if blocks else np.zeros((0, self.dims), dtype=np.float32)
