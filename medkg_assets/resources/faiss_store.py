"""`FaissIndexResource`: builds on a GPU when faiss-gpu sees one, reads and writes index files."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
from dagster import ConfigurableResource

from medkg_assets.config.profiles import IndexSpec
from medkg_assets.vectors.faiss_indexes import BuiltIndex, build_index, gpu_count


class FaissIndexResource(ConfigurableResource):
    """`use_gpu`: `auto` (GPU when faiss-gpu and a device are present), `never`."""

    use_gpu: str = "auto"

    @property
    def gpus(self) -> int:
        return gpu_count() if self.use_gpu == "auto" else 0

    def build(self, vectors: np.ndarray, spec: IndexSpec) -> BuiltIndex:
        return build_index(vectors, spec, use_gpu=self.gpus > 0)

    def write(self, index: faiss.Index, path: Path) -> None:
        faiss.write_index(index, str(path))

    def read(self, path: Path) -> faiss.Index:
        return faiss.read_index(str(path))
