"""The FAISS artefact on disk: `index.faiss`, `ids.json` (row → chunk id), `info.json`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss

from medkg_assets.storage.atomic import canonical_json


@dataclass
class FaissArtifact:
    index: faiss.Index
    chunk_ids: list[str]
    info: dict[str, Any]

    def write(self, directory: Path) -> None:
        faiss.write_index(self.index, str(directory / "index.faiss"))
        (directory / "ids.json").write_text(canonical_json(self.chunk_ids))
        (directory / "info.json").write_text(canonical_json(self.info))

    @classmethod
    def load(cls, directory: Path) -> FaissArtifact:
        index = faiss.read_index(str(directory / "index.faiss"))
        info = json.loads((directory / "info.json").read_text())
        if "nprobe" in info:  # not stored in the index file
            faiss.extract_index_ivf(index).nprobe = info["nprobe"]
        return cls(index, json.loads((directory / "ids.json").read_text()), info)
