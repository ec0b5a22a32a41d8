"""`LuceneResource`: Pyserini/Anserini index builds (subprocess) and searchers (in process)."""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource

from medkg_assets.search.lucene import LuceneSearch, build_index


class LuceneResource(ConfigurableResource):
    threads: int = 1
    build_timeout_s: int = 3600

    def build(self, kind: str, collection_dir: Path, index_dir: Path) -> None:
        build_index(kind, collection_dir, index_dir, threads=self.threads, timeout_s=self.build_timeout_s)

    def open(self, impact_dir: Path | None, bm25_dir: Path | None) -> LuceneSearch:
        return LuceneSearch(impact_dir, bm25_dir)
