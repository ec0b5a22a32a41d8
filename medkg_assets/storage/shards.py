"""Shards: the unit of work of every per-chunk stage, and their Parquet files.

A namespace's chunks are split into `n` shards (a power of two) by a hash of the document id, so
a document always lands in the same shard and a changed document rewrites one shard. `n` is kept
in the namespace's shard plan and only doubles ("re-sharding") when a shard would exceed
`sharding.max_chunks_per_shard`: every shard `i` then splits into `i` and `i + n`.

Each shard is one Parquet file (pyarrow), readable by DuckDB, Polars, Ray or `datasets` without
this package. A shard is named by its index (`shard-00003`) and identified by a digest of its
rows (chunk id, content hash), which keys everything derived from it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict

from medkg_assets.storage.atomic import file_mode

MANIFEST_FILE = "shards.json"
SHARDS_DIR = "shards"
# Room left in each shard when a plan is first made, so documents added later rarely re-shard it.
FILL_TARGET = 0.5


class ShardError(RuntimeError):
    """A shard file is missing, unreadable, or disagrees with its manifest."""


def shard_name(index: int) -> str:
    return f"shard-{index:05d}"


def shard_of(doc_id: str, shards: int) -> int:
    """The shard a document belongs to among `shards`: stable across runs, machines and Pythons."""
    return int.from_bytes(hashlib.sha256(doc_id.encode("utf-8")).digest()[:8], "big") % shards


def initial_shard_count(chunks: int, max_chunks_per_shard: int) -> int:
    """The smallest power of two that fills shards to about FILL_TARGET of their maximum."""
    count = 1
    while chunks > count * max_chunks_per_shard * FILL_TARGET:
        count *= 2
    return count


def rows_digest(pairs: Iterable[tuple[str, str]]) -> str:
    """Digest of a shard's (chunk id, content hash) rows in order: equal rows, equal digest."""
    digest = hashlib.sha256()
    for chunk_id, content_hash in pairs:
        digest.update(f"{chunk_id}:{content_hash}\n".encode())
    return digest.hexdigest()[:24]


def output_key(shard_digest: str, cache_key: str) -> str:
    """What a stage's output for one shard is stored under: its input rows and the profile's
    cache key (fingerprint + encoding version). Equal key, equal bytes."""
    return hashlib.sha256(f"{shard_digest}\x1f{cache_key}".encode()).hexdigest()[:24]


class ShardEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str  # shard-00003
    rows: int
    digest: str  # rows_digest of its (chunk id, content hash) rows
    key: str = ""  # for a stage output: output_key(chunk shard digest, cache key)

    @property
    def file(self) -> str:
        return f"{SHARDS_DIR}/{self.name}.parquet"


class ShardManifest(BaseModel):
    """`shards.json` of a sharded artefact: which shards it has, their rows and digests."""

    shard_count: int
    max_chunks_per_shard: int
    shards: list[ShardEntry]

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.shards)

    def entry(self, name: str) -> ShardEntry:
        for shard in self.shards:
            if shard.name == name:
                return shard
        raise ShardError(f"no shard {name} in this artefact (it has {len(self.shards)} shards)")

    @classmethod
    def load(cls, directory: Path) -> ShardManifest:
        path = directory / MANIFEST_FILE
        if not path.exists():
            raise ShardError(
                f"{path} is missing: the artefact was not written by a sharded build; rebuild it"
            )
        return cls.model_validate_json(path.read_text())

    def write(self, directory: Path) -> None:
        (directory / MANIFEST_FILE).write_text(self.model_dump_json(indent=2) + "\n")


def write_table(path: Path, table: pa.Table) -> None:
    """Write a Parquet file atomically (temp file, fsync, rename): a killed writer leaves no shard."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.chmod(tmp, file_mode())
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_table(
    path: Path, expected_rows: int | None, fix: str, columns: Sequence[str] | None = None
) -> pa.Table:
    """Read one shard file, refusing a missing, truncated or corrupt one, or one whose row count
    disagrees with its manifest, with an error naming the file and `fix`."""
    if not path.exists():
        raise ShardError(f"shard file {path} is missing; {fix}")
    try:
        table = pq.read_table(path, columns=list(columns) if columns else None)
    except (pa.ArrowException, OSError) as error:
        raise ShardError(f"shard file {path} is unreadable ({error}); {fix}") from error
    if expected_rows is not None and table.num_rows != expected_rows:
        raise ShardError(
            f"shard file {path} has {table.num_rows} rows, its manifest says {expected_rows}; {fix}"
        )
    return table


def readable_rows(path: Path) -> int | None:
    """Rows of a complete Parquet file (its footer reads), None otherwise: a torn or truncated file
    is redone, never read short. Only the footer is read — reading every page of every finished
    shard would cost the plan and publish steps minutes per GB; a page damaged later is caught,
    with the shard named, when a reader decodes it (`read_table`)."""
    try:
        return int(pq.ParquetFile(path).metadata.num_rows) if path.exists() else None
    except (pa.ArrowException, OSError):
        return None
