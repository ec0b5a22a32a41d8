"""`RerankerResource`: the profile's CrossEncoder, batches capped by EMBEDDER_RERANK_BATCH_CAP."""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource

from medkg_assets.config.profiles import EmbeddingProfile
from medkg_assets.encoders.devices import select_device
from medkg_assets.encoders.rerank import CrossEncoderReranker


class RerankerResource(ConfigurableResource):
    device: str = "auto"
    batch_cap: int = 32

    def open(self, profile: EmbeddingProfile, models_dir: Path | None) -> CrossEncoderReranker:
        device = select_device(self.device, profile.require_gpu, f"profile {profile.name} (rerank)")
        spec = profile.reranker
        return CrossEncoderReranker(spec.model, device, spec.max_length, models_dir, spec.max_query_tokens)
