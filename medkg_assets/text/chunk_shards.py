"""Chunks as Parquet shards: written streaming (one shard in memory at a time), read one by one.

Rows keep the source order of their documents inside a shard; `model_input` (what encoders see)
is stored beside title and text so other tools read exactly what was embedded.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa

from medkg_assets.storage.shards import (
    ShardEntry,
    ShardManifest,
    initial_shard_count,
    read_table,
    rows_digest,
    shard_name,
    shard_of,
    write_table,
)
from medkg_assets.text.chunking import Chunk

CHUNK_SCHEMA = pa.schema(
    [
        ("chunk_id", pa.string()),
        ("doc_id", pa.string()),
        ("namespace", pa.string()),
        ("tenant_id", pa.string()),
        ("position", pa.int32()),
        ("start_char", pa.int64()),
        ("end_char", pa.int64()),
        ("token_count", pa.int32()),
        ("title", pa.string()),
        ("text", pa.string()),
        ("content_hash", pa.string()),
        ("model_input", pa.string()),
    ]
)
_FIELDS = [f for f in CHUNK_SCHEMA.names if f != "model_input"]


def chunk_table(chunks: list[Chunk]) -> pa.Table:
    columns: dict[str, list[object]] = {name: [] for name in CHUNK_SCHEMA.names}
    for chunk in chunks:
        for name in _FIELDS:
            columns[name].append(getattr(chunk, name))
        columns["model_input"].append(chunk.model_input)
    return pa.table(columns, schema=CHUNK_SCHEMA)


def chunks_from_table(table: pa.Table) -> list[Chunk]:
    return [Chunk(**{name: row[name] for name in _FIELDS}) for row in table.select(_FIELDS).to_pylist()]


class _Spool:
    """Per-shard JSON-lines spool files: chunks go to disk as they are made, not to memory."""

    def __init__(self, root: Path, shards: int):
        self.root, self.shards = root, shards
        self.root.mkdir(parents=True)
        self.handles = [(root / f"{i}.jsonl").open("w", encoding="utf-8") for i in range(shards)]
        self.counts = [0] * shards

    def add(self, chunks: list[Chunk]) -> None:
        if not chunks:
            return
        shard = shard_of(chunks[0].doc_id, self.shards)
        for chunk in chunks:
            self.handles[shard].write(json.dumps(chunk.to_record(), ensure_ascii=False) + "\n")
        self.counts[shard] += len(chunks)

    def close(self) -> None:
        for handle in self.handles:
            handle.close()

    def read(self, shard: int) -> Iterator[Chunk]:
        with (self.root / f"{shard}.jsonl").open(encoding="utf-8") as handle:
            for line in handle:
                yield Chunk.from_record(json.loads(line))

    def documents(self, shard: int) -> Iterator[list[Chunk]]:
        """A shard's chunks grouped by document, in the order they were added."""
        group: list[Chunk] = []
        for chunk in self.read(shard):
            if group and chunk.doc_id != group[-1].doc_id:
                yield group
                group = []
            group.append(chunk)
        if group:
            yield group


def _respool(spool: _Spool, scratch: Path) -> _Spool:
    """Double the shard count: every shard splits in two, documents keep their relative order."""
    doubled = _Spool(scratch / f"spool-{spool.shards * 2}", spool.shards * 2)
    for shard in range(spool.shards):
        for document in spool.documents(shard):
            doubled.add(document)
    doubled.close()
    shutil.rmtree(spool.root)
    return doubled


def write_chunk_shards(
    directory: Path,
    documents: Iterable[list[Chunk]],
    shard_count: int | None,
    max_chunks_per_shard: int,
) -> ShardManifest:
    """Write each document's chunks into its shard under `directory/shards/`, and `shards.json`.

    `shard_count` is the namespace's current plan (None: none yet, sized from the chunk count);
    it doubles while any shard would exceed `max_chunks_per_shard` (a document is never split
    across shards, so one longer than the maximum gets a shard of its own, over it).
    """
    scratch = Path(tempfile.mkdtemp(prefix=".spool-", dir=directory))
    try:
        spool = _Spool(scratch / "spool-first", shard_count or 1)
        for chunks in documents:
            spool.add(chunks)
        spool.close()
        if shard_count is None:
            wanted = initial_shard_count(sum(spool.counts), max_chunks_per_shard)
            while spool.shards < wanted:
                spool = _respool(spool, scratch)
        while max(spool.counts) > max_chunks_per_shard and _splittable(spool, max_chunks_per_shard):
            spool = _respool(spool, scratch)
        entries = []
        for shard in range(spool.shards):
            chunks = list(spool.read(shard))
            if not chunks:  # no document hashed here (yet): no file, no step
                continue
            entry = ShardEntry(
                name=shard_name(shard),
                rows=len(chunks),
                digest=rows_digest((c.chunk_id, c.content_hash) for c in chunks),
            )
            write_table(directory / entry.file, chunk_table(chunks))
            entries.append(entry)
        manifest = ShardManifest(
            shard_count=spool.shards, max_chunks_per_shard=max_chunks_per_shard, shards=entries
        )
        manifest.write(directory)
        return manifest
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _splittable(spool: _Spool, max_chunks_per_shard: int) -> bool:
    """Whether doubling can still help: some overfull shard holds more than one document."""
    for shard, count in enumerate(spool.counts):
        if count > max_chunks_per_shard and sum(1 for _ in spool.documents(shard)) > 1:
            return True
    return False


def read_chunk_shard(directory: Path, entry: ShardEntry) -> list[Chunk]:
    fix = f"rebuild the chunks (materialise `chunks` for the namespace): {directory} is damaged"
    return chunks_from_table(read_table(directory / entry.file, entry.rows, fix))


def iter_chunk_shards(directory: Path) -> Iterator[tuple[ShardEntry, list[Chunk]]]:
    """Every shard of a chunk version with its chunks, one shard in memory at a time."""
    for entry in ShardManifest.load(directory).shards:
        yield entry, read_chunk_shard(directory, entry)
