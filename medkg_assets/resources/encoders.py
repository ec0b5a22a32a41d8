"""`DenseEncoderResource`: opens the profile's dense backend under the GPU policy."""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource

from medkg_assets.config.profiles import EmbeddingProfile
from medkg_assets.encoders.dense import DenseEncoder, open_dense_encoder
from medkg_assets.encoders.devices import limit_vram, select_device


class DenseEncoderResource(ConfigurableResource):
    """Device `auto|cuda|cpu`; VRAM budget in GB (CUDA allocations are capped to it);
    `vllm_url` for profiles served by vLLM's OpenAI-compatible API."""

    device: str = "auto"
    vram_budget_gb: float = 12.0
    vllm_url: str | None = None
    vllm_timeout_s: float = 60.0
    vllm_retries: int = 3

    def check_device(self, profile: EmbeddingProfile) -> None:
        """Fail before any work (GpuNotAvailableError) when the profile needs a GPU this process lacks."""
        if not (profile.dense.backend == "vllm" and self.vllm_url):  # a vLLM server owns its GPU
            select_device(self.device, profile.require_gpu, f"profile {profile.name}")

    def open(self, profile: EmbeddingProfile, models_dir: Path | None) -> DenseEncoder:
        encoder = open_dense_encoder(
            profile,
            device=self.device,
            models_dir=models_dir,
            vllm_url=self.vllm_url,
            vllm_timeout_s=self.vllm_timeout_s,
            vllm_retries=self.vllm_retries,
            vram_budget_gb=self.vram_budget_gb,
        )
        limit_vram(encoder.device, self.vram_budget_gb)
        return encoder
