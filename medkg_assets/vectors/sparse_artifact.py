"""The sparse artefact: `vectors.jsonl` (id, term → weight, metadata) and `meta.json`.

When sparse is disabled the artefact is a `meta.json` saying so, with no vectors, so that
downstream stages can warn instead of failing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from medkg_assets.storage.atomic import canonical_json, jsonl_lines
from medkg_assets.vectors.export import chunk_records


@dataclass
class SparseArtifact:
    namespace: str
    profile: str
    fingerprint: str
    model: str
    enabled: bool
    chunk_ids: list[str] = field(default_factory=list)
    doc_ids: list[str] = field(default_factory=list)
    content_hashes: list[str] = field(default_factory=list)
    vectors: list[dict[str, float]] = field(default_factory=list)
    disabled_reason: str = ""
    cache_key: str = ""  # fingerprint + encoding version: what cached rows may be reused under
    chunk_version: str = ""  # the chunk version these vectors (or, disabled, BM25) are built from

    def write(self, directory: Path, tenant_id: str) -> None:
        meta = {
            "chunk_version": self.chunk_version,
            "namespace": self.namespace,
            "profile": self.profile,
            "fingerprint": self.fingerprint,
            "model": self.model,
            "enabled": self.enabled,
            "disabled_reason": self.disabled_reason,
            "cache_key": self.cache_key,
            "count": len(self.chunk_ids),
            "chunk_ids": self.chunk_ids,
            "doc_ids": self.doc_ids,
            "content_hashes": self.content_hashes,
        }
        (directory / "meta.json").write_text(canonical_json(meta))
        if not self.enabled:
            return
        records = chunk_records(
            self.chunk_ids,
            self.doc_ids,
            self.vectors,
            namespace=self.namespace,
            tenant_id=tenant_id,
            profile=self.profile,
            fingerprint=self.fingerprint,
        )
        with (directory / "vectors.jsonl").open("w", encoding="utf-8") as out:
            out.writelines(jsonl_lines(records))

    @classmethod
    def load(cls, directory: Path) -> SparseArtifact:
        meta = json.loads((directory / "meta.json").read_text())
        vectors = []
        if meta["enabled"]:
            with (directory / "vectors.jsonl").open(encoding="utf-8") as handle:
                vectors = [json.loads(line)["vector"] for line in handle]
        return cls(
            namespace=meta["namespace"],
            profile=meta["profile"],
            fingerprint=meta["fingerprint"],
            model=meta["model"],
            enabled=meta["enabled"],
            chunk_ids=meta["chunk_ids"],
            doc_ids=meta["doc_ids"],
            content_hashes=meta["content_hashes"],
            vectors=vectors,
            disabled_reason=meta.get("disabled_reason", ""),
            cache_key=meta["cache_key"],
            chunk_version=meta.get("chunk_version", ""),
        )
