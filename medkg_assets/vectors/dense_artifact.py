"""The dense artefact on disk: `vectors.npy` + `meta.json` + a JSONL export for other tools."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from medkg_assets.storage.atomic import canonical_json, jsonl_lines
from medkg_assets.vectors.export import chunk_records


@dataclass
class DenseArtifact:
    vectors: np.ndarray
    chunk_ids: list[str]
    doc_ids: list[str]
    content_hashes: list[str]
    namespace: str
    profile: str
    fingerprint: str
    model: str
    dims: int
    normalized: bool
    cache_key: str = ""  # fingerprint + encoding version: what cached rows may be reused under
    chunk_version: str = ""  # the chunk version these vectors were encoded from (storage/pinning.py)

    def meta(self) -> dict[str, Any]:
        return {
            "chunk_version": self.chunk_version,
            "namespace": self.namespace,
            "profile": self.profile,
            "fingerprint": self.fingerprint,
            "model": self.model,
            "dims": self.dims,
            "normalized": self.normalized,
            "cache_key": self.cache_key,
            "count": len(self.chunk_ids),
            "chunk_ids": self.chunk_ids,
            "doc_ids": self.doc_ids,
            "content_hashes": self.content_hashes,
        }

    def write(self, directory: Path, tenant_id: str) -> None:
        """Write into a build directory (the caller publishes it atomically)."""
        np.save(directory / "vectors.npy", np.ascontiguousarray(self.vectors, dtype=np.float32))
        (directory / "meta.json").write_text(canonical_json(self.meta()))
        records = chunk_records(
            self.chunk_ids,
            self.doc_ids,
            (row.tolist() for row in self.vectors),
            namespace=self.namespace,
            tenant_id=tenant_id,
            profile=self.profile,
            fingerprint=self.fingerprint,
        )
        with (directory / "embeddings.jsonl").open("w", encoding="utf-8") as out:
            out.writelines(jsonl_lines(records))

    @classmethod
    def load(cls, directory: Path) -> DenseArtifact:
        meta = json.loads((directory / "meta.json").read_text())
        return cls(
            vectors=np.load(directory / "vectors.npy"),
            chunk_ids=meta["chunk_ids"],
            doc_ids=meta["doc_ids"],
            content_hashes=meta["content_hashes"],
            namespace=meta["namespace"],
            profile=meta["profile"],
            fingerprint=meta["fingerprint"],
            model=meta["model"],
            dims=meta["dims"],
            normalized=meta["normalized"],
            cache_key=meta["cache_key"],
            chunk_version=meta.get("chunk_version", ""),
        )
