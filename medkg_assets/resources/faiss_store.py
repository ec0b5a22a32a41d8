"""`FaissIndexResource`: builds on a GPU when faiss-gpu sees one, reads and writes index files."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import faiss
import numpy as np
from dagster import ConfigurableResource

from medkg_assets.config.profiles import IndexSpec
from medkg_assets.vectors.faiss_indexes import (
    BuiltIndex,
    build_index_from_blocks,
    check_memory_budget,
    gpu_count,
)


class FaissIndexResource(ConfigurableResource):
    """`use_gpu`: `auto` (GPU when faiss-gpu and a device are present), `never`.
    `memory_budget_gb` (MEDKG_FAISS_MEMORY_BUDGET_GB): the most an index may take in memory;
    unset, three quarters of this machine's RAM (what the node has, not a pod's limit: the Helm
    values set the variable from the run pods' memory limit)."""

    use_gpu: str = "auto"
    memory_budget_gb: float | None = None

    @property
    def gpus(self) -> int:
        return gpu_count() if self.use_gpu == "auto" else 0

    def budget_bytes(self) -> int:
        if self.memory_budget_gb is not None:
            return int(self.memory_budget_gb * 2**30)
        return int(0.75 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))

    def build(
        self, blocks: Callable[[], Iterator[np.ndarray]], n: int, dims: int, spec: IndexSpec
    ) -> BuiltIndex:
        """Build from blocks of rows (shards) after the memory check: an index over the budget is
        refused before any work."""
        check_memory_budget(spec, n, dims, self.budget_bytes())
        return build_index_from_blocks(blocks, n, dims, spec, use_gpu=self.gpus > 0)

    def write(self, index: faiss.Index, path: Path) -> None:
        faiss.write_index(index, str(path))

    def read(self, path: Path) -> faiss.Index:
        return faiss.read_index(str(path))
