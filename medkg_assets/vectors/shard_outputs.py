"""Durable per-shard outputs of a stage, and their publication as one artefact version.

A shard step writes its output to `<stage>/work/<key>.parquet` (atomically), keyed by its input
shard's digest and the profile's cache key: a rerun after a crash, kill or preemption finds the
finished shards there and encodes only the ones that were in flight. Publishing hard-links the
shard files into a new version directory (`versions/<digest>/shards/shard-NNNNN.parquet` with
`shards.json` and `meta.json`), so readers only ever see whole versions.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Generic, Self, TypeVar

import pyarrow as pa

from medkg_assets.storage.atomic import VersionedDirectory, canonical_json
from medkg_assets.storage.shards import (
    ShardEntry,
    ShardError,
    ShardManifest,
    read_table,
    readable_rows,
    write_table,
)

META_FILE = "meta.json"
WORK_DIR = "work"
# A work file no version references is kept this long: another run of the partition may be
# about to publish it.
UNREFERENCED_GRACE_S = 6 * 3600


class ShardOutputs:
    """The work area (finished shards, by key) and published versions of one sharded stage."""

    def __init__(self, store: VersionedDirectory):
        self.store = store
        self.work = store.root / WORK_DIR

    def path(self, key: str) -> Path:
        return self.work / f"{key}.parquet"

    def finished_rows(self, key: str) -> int | None:
        """Rows of the finished output under `key`, None if absent, torn or damaged (then redone)."""
        return readable_rows(self.path(key))

    def save(self, key: str, table: pa.Table) -> None:
        write_table(self.path(key), table)

    def publish(self, manifest: ShardManifest, meta: dict[str, Any]) -> Path:
        """A new version from finished shards; refuses one whose file is missing or short."""
        for entry in manifest.shards:
            rows = self.finished_rows(entry.key)
            if rows != entry.rows:
                found = "missing or unreadable" if rows is None else f"{rows} rows"
                raise ShardError(
                    f"{entry.name} (output {self.path(entry.key)}): expected {entry.rows} rows, {found}; "
                    "rerun the stage: that shard is encoded again, the others are kept"
                )
        with self.store.build() as scratch:
            (scratch / "shards").mkdir()
            for entry in manifest.shards:
                _link_or_copy(self.path(entry.key), scratch / entry.file)
            manifest.write(scratch)
            (scratch / META_FILE).write_text(canonical_json(meta))
        self._prune()
        return self.store.require_current(str(self.store.root))

    def _prune(self) -> None:
        """Drop work files no kept version references, once they are older than the grace period."""
        referenced: set[str] = set()
        versions = self.store.root / "versions"
        for version in versions.iterdir() if versions.is_dir() else []:
            try:
                referenced |= {e.key for e in ShardManifest.load(version).shards}
            except (ShardError, ValueError):
                continue
        cutoff = time.time() - UNREFERENCED_GRACE_S
        for file in self.work.glob("*.parquet"):
            if file.stem not in referenced and file.stat().st_mtime < cutoff:
                file.unlink(missing_ok=True)


def _link_or_copy(source: Path, target: Path) -> None:
    """Hard link (no copy of GBs of vectors); a copy where the filesystem has no links."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def load_meta(directory: Path) -> dict[str, Any]:
    meta: dict[str, Any] = json.loads((directory / META_FILE).read_text())
    return meta


Shard = TypeVar("Shard", bound="RowsShard")


@dataclass(frozen=True)
class RowsShard:
    """The rows every per-chunk output shard has: which chunk, of which document, of what text."""

    entry: ShardEntry
    chunk_ids: list[str]
    doc_ids: list[str]
    content_hashes: list[str]


def row_columns(table: pa.Table) -> tuple[list[str], list[str], list[str]]:
    return (
        table.column("chunk_id").to_pylist(),
        table.column("doc_id").to_pylist(),
        table.column("content_hash").to_pylist(),
    )


class ShardedArtifact(Generic[Shard]):
    """A published version of a per-chunk stage: `meta.json`, `shards.json` and one Parquet file a
    shard, read one shard at a time (or all at once by the few readers of small namespaces)."""

    stage = ""  # the asset that writes it, named in repair hints

    def __init__(self, directory: Path):
        self.directory = directory
        self.meta: dict[str, Any] = load_meta(directory)
        self.manifest = (
            ShardManifest.load(directory)
            if self.meta.get("enabled", True)
            else ShardManifest(shard_count=0, max_chunks_per_shard=0, shards=[])
        )

    @classmethod
    def load(cls, directory: Path) -> Self:
        return cls(directory)

    def from_table(self, entry: ShardEntry, table: pa.Table) -> Shard:
        raise NotImplementedError

    @property
    def cache_key(self) -> str:
        return str(self.meta.get("cache_key", ""))

    @property
    def chunk_version(self) -> str:
        return str(self.meta.get("chunk_version", ""))

    @property
    def count(self) -> int:
        return self.manifest.rows

    @property
    def fix(self) -> str:
        where = f"{self.meta.get('namespace')}|{self.meta.get('profile')}"
        return f"rebuild {self.stage} for {where} ({self.directory} is damaged)"

    def read_shard(self, entry: ShardEntry) -> Shard:
        return self.from_table(entry, read_table(self.directory / entry.file, entry.rows, self.fix))

    def shard(self, name: str) -> Shard | None:
        """The shard of that name, if this version has it (the previous version as a row cache)."""
        for entry in self.manifest.shards:
            if entry.name == name:
                return self.read_shard(entry)
        return None

    def shards(self) -> Iterator[Shard]:
        for entry in self.manifest.shards:
            yield self.read_shard(entry)

    @cached_property
    def _rows(self) -> tuple[list[str], list[str], list[str]]:
        ids: list[str] = []
        docs: list[str] = []
        hashes: list[str] = []
        for entry in self.manifest.shards:
            table = read_table(self.directory / entry.file, entry.rows, self.fix, _ROW_COLUMNS)
            shard_ids, shard_docs, shard_hashes = row_columns(table)
            ids += shard_ids
            docs += shard_docs
            hashes += shard_hashes
        return ids, docs, hashes

    @property
    def chunk_ids(self) -> list[str]:
        return self._rows[0]

    @property
    def doc_ids(self) -> list[str]:
        return self._rows[1]

    @property
    def content_hashes(self) -> list[str]:
        return self._rows[2]

    def documents(self) -> int:
        """Distinct documents: a document never spans shards, so per-shard counts add up."""
        return sum(
            len(set(read_table(self.directory / e.file, e.rows, self.fix, ["doc_id"]).column(0).to_pylist()))
            for e in self.manifest.shards
        )


_ROW_COLUMNS = ("chunk_id", "doc_id", "content_hash")


def previous_shard(
    store: VersionedDirectory, name: str, load: Callable[[Path], ShardedArtifact[Shard]]
) -> tuple[str, Shard] | None:
    """The published version's shard of that name with its cache key: the row-level cache of a
    shard step. None when there is no such version or shard, or it cannot be read (encode all)."""
    current = store.current
    if current is None:
        return None
    try:
        previous = load(current)
        shard = previous.shard(name) if previous.meta.get("enabled", True) else None
    except (ShardError, OSError, ValueError, KeyError):
        return None
    return (previous.cache_key, shard) if shard is not None else None
