"""`LuceneResource`: Pyserini/Anserini index builds (subprocess) and searchers (in process)."""

from __future__ import annotations

import os
from pathlib import Path

from dagster import ConfigurableResource

from medkg_assets.search.lucene import LuceneSearch, build_index


def default_threads() -> int:
    return max(1, min(8, os.cpu_count() or 1))


class LuceneResource(ConfigurableResource):
    """`threads`: Anserini indexing threads, one shard file each (at most as many as files)."""

    threads: int = default_threads()
    build_timeout_s: int = 3600

    def build(self, kind: str, collection_dir: Path, index_dir: Path) -> None:
        files = max(1, sum(1 for _ in collection_dir.glob("*.jsonl")))
        build_index(
            kind, collection_dir, index_dir, threads=min(self.threads, files), timeout_s=self.build_timeout_s
        )

    def open(self, impact_dir: Path | None, bm25_dir: Path | None) -> LuceneSearch:
        return LuceneSearch(impact_dir, bm25_dir)
