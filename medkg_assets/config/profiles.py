"""Embedding profiles (`config/embedding_profiles.yaml`) and their fingerprints."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from medkg_assets.config.loading import ConfigError, parse_model, read_yaml


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DenseModelSpec(_Strict):
    model: str
    backend: Literal["sentence_transformers", "vllm"] = "sentence_transformers"
    served_model_name: str | None = None
    dims: int = Field(gt=0)
    max_tokens: int = Field(gt=0)
    # Tokenizer that counts a chunk's tokens for the budget; None = the model's own.
    tokenizer: str | None = None
    batch_size: int = Field(gt=0, default=32)
    # vllm backend: requests in flight per batch, each carrying about batch_size / concurrency texts.
    concurrency: int = Field(gt=0, default=1)
    normalize: bool = True


class SparseModelSpec(_Strict):
    model: str
    top_k_terms: int = Field(gt=0, default=400)
    max_weight: float = Field(gt=0, default=10.0)
    # Anserini truncates impact weights to integers: weights are stored as round(w * scale).
    quantization_scale: int = Field(gt=0, default=100)
    # Padded tokens per forward pass (texts × longest): bounds the batch × sequence × vocabulary
    # logits (8192 tokens × 30,522 terms × 4 bytes ≈ 1 GiB) whatever the text lengths.
    max_batch_tokens: int = Field(gt=0, default=8192)


class RerankerSpec(_Strict):
    """`max_length` bounds query + passage together; `max_query_tokens` cuts a long query first, so
    a long consumer message cannot crowd the passage out of the CrossEncoder's input."""

    model: str
    max_length: int = Field(gt=0, default=512)
    max_query_tokens: int | None = Field(default=None, gt=0)


class FlatIndexSpec(_Strict):
    type: Literal["flat"] = "flat"


class HnswIndexSpec(_Strict):
    type: Literal["hnsw"]
    m: int = Field(gt=1, default=32)
    ef_construction: int = Field(gt=0, default=200)
    ef_search: int = Field(gt=0, default=128)
    self_recall_floor: float = Field(ge=0, le=1, default=0.95)


class IvfPqIndexSpec(_Strict):
    type: Literal["ivf_pq"]
    nlist: int = Field(gt=0, default=1024)
    pq_m: int = Field(gt=0, default=64)
    pq_nbits: int = Field(gt=0, le=16, default=8)
    train_sample: int = Field(gt=0, default=100_000)
    nprobe: int = Field(gt=0, default=32)
    self_recall_floor: float = Field(ge=0, le=1, default=0.95)


IndexSpec = Annotated[FlatIndexSpec | HnswIndexSpec | IvfPqIndexSpec, Field(discriminator="type")]


class GpuSpec(_Strict):
    count: int = Field(gt=0, default=1)
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[dict[str, str]] = Field(default_factory=list)


class EmbeddingProfile(_Strict):
    """One way of turning chunks into vectors and indexes."""

    name: str
    description: str = ""
    dense: DenseModelSpec
    sparse: SparseModelSpec
    reranker: RerankerSpec
    index: IndexSpec = Field(default_factory=FlatIndexSpec)
    require_gpu: bool = False
    gpu: GpuSpec = Field(default_factory=GpuSpec)

    @model_validator(mode="after")
    def _vllm_needs_a_served_name(self) -> EmbeddingProfile:
        if self.dense.backend == "vllm" and not self.dense.served_model_name:
            raise ValueError("dense.served_model_name is required for the vllm backend")
        return self

    @property
    def fingerprint(self) -> str:
        """Hash of every field that changes vectors (backend included: servers differ in float detail)."""
        vector_fields = {
            "dense": self.dense.model_dump(
                exclude={"batch_size", "concurrency", "served_model_name", "tokenizer"}
            ),
            "sparse": self.sparse.model_dump(exclude={"quantization_scale", "max_batch_tokens"}),
        }
        canonical = json.dumps(vector_fields, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @property
    def index_fingerprint(self) -> str:
        """Fingerprint of the vectors plus the index spec: what the FAISS artefact depends on."""
        canonical = json.dumps(self.index.model_dump(), sort_keys=True)
        return hashlib.sha256(f"{self.fingerprint}:{canonical}".encode()).hexdigest()[:16]


class ProfileManifest(BaseModel):
    """All profiles of `embedding_profiles.yaml`, by name."""

    model_config = ConfigDict(frozen=True)
    profiles: dict[str, EmbeddingProfile]
    source: Path

    @property
    def names(self) -> list[str]:
        return sorted(self.profiles)

    def get(self, name: str) -> EmbeddingProfile:
        """The profile called `name`; an unknown name lists the known ones."""
        try:
            return self.profiles[name]
        except KeyError:
            known = ", ".join(self.names)
            raise UnknownProfileError(
                f"unknown embedding profile {name!r}; known profiles in {self.source}: {known}"
            ) from None


class UnknownProfileError(ConfigError):
    """A profile name that the manifest does not define."""


def load_profiles(path: Path) -> ProfileManifest:
    """Load and validate the profile manifest."""
    raw = read_yaml(path).get("profiles")
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{path}: profiles: expected a non-empty mapping of profile names")
    profiles = {}
    for name, body in raw.items():
        if not isinstance(body, dict):
            raise ConfigError(f"{path}: profiles.{name}: expected a mapping")
        profiles[name] = parse_model(
            EmbeddingProfile, {"name": name, **body}, path, prefix=f"profiles.{name}"
        )
    return ProfileManifest(profiles=profiles, source=path)
