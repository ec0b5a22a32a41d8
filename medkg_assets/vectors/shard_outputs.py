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
from pathlib import Path
from typing import Any

import pyarrow as pa

from medkg_assets.storage.atomic import VersionedDirectory, canonical_json
from medkg_assets.storage.shards import ShardError, ShardManifest, readable_rows, write_table

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
