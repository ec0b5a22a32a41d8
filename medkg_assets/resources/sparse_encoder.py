"""`SparseEncoderResource`: the profile's SPLADE model under the GPU policy."""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource

from medkg_assets.config.profiles import EmbeddingProfile
from medkg_assets.encoders.devices import select_device
from medkg_assets.encoders.sparse import SpladeEncoder


class SparseEncoderResource(ConfigurableResource):
    device: str = "auto"

    def check_device(self, profile: EmbeddingProfile) -> None:
        """Fail before any work (GpuNotAvailableError) when the profile needs a GPU this process lacks."""
        select_device(self.device, profile.require_gpu, f"profile {profile.name} (sparse)")

    def open(self, profile: EmbeddingProfile, models_dir: Path | None) -> SpladeEncoder:
        device = select_device(self.device, profile.require_gpu, f"profile {profile.name} (sparse)")
        return SpladeEncoder(profile.sparse, device, models_dir, max_tokens=profile.dense.max_tokens)
