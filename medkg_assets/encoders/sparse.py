"""SPLADE encoding with `sentence_transformers.SparseEncoder`: top-k terms, clipped weights."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from medkg_assets.config.profiles import SparseModelSpec
from medkg_assets.encoders.batching import token_bounded_slices
from medkg_assets.encoders.errors import ModelLoadError
from medkg_assets.model_reference import ModelNotFoundError, resolve_model

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SparseEncoder
    from typing_extensions import TypeIs

TermWeights = dict[str, float]
TermPairs = list[tuple[str, float]]


@lru_cache(maxsize=2)
def _load_sparse_encoder(location: str, device: str) -> SparseEncoder:
    from sentence_transformers import SparseEncoder

    return SparseEncoder(location, device=device)


def _is_single_text(decoded: TermPairs | list[TermPairs]) -> TypeIs[TermPairs]:
    """`SparseEncoder.decode` gives one flat list of pairs for a single text, a list per text for a batch."""
    return bool(decoded) and isinstance(decoded[0], tuple)


def prune_terms(pairs: Sequence[tuple[str, float]], top_k: int, max_weight: float) -> TermWeights:
    """Keep the `top_k` heaviest positive terms, clip weights at `max_weight`, sorted by term."""
    rounded = [(term, round(min(float(weight), max_weight), 6)) for term, weight in pairs]
    positive = sorted(((t, w) for t, w in rounded if w > 0), key=lambda pair: (-pair[1], pair[0]))
    return dict(sorted(positive[:top_k]))


class SpladeEncoder:
    """Document and query encoding for one SPLADE model; term names are vocabulary tokens."""

    provider = "sentence_transformers"

    def __init__(
        self, spec: SparseModelSpec, device: str, models_dir: Path | None = None, max_tokens: int = 512
    ):
        try:
            location = resolve_model(spec.model, models_dir).location
            self.model = _load_sparse_encoder(location, device)
        except (ModelNotFoundError, OSError) as error:
            raise ModelLoadError(f"cannot load sparse model {spec.model!r}: {error}") from error
        self.model.max_seq_length = min(max_tokens, self.model.max_seq_length or max_tokens)
        self.spec, self.device = spec, device

    def _decode(self, embeddings: torch.Tensor) -> list[TermWeights]:
        decoded = self.model.decode(embeddings, top_k=self.spec.top_k_terms)
        batch = [decoded] if _is_single_text(decoded) else decoded
        return [prune_terms(pairs, self.spec.top_k_terms, self.spec.max_weight) for pairs in batch]

    def token_lengths(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text as the model sees it (special tokens in, truncated at its max length)."""
        encoded = self.model.tokenizer(
            list(texts), truncation=True, max_length=self.model.max_seq_length, add_special_tokens=True
        )
        return [len(ids) for ids in encoded["input_ids"]]

    def encode_documents(self, texts: Sequence[str]) -> list[TermWeights]:
        """Term weights per text; forward passes hold at most `spec.max_batch_tokens` padded tokens."""
        weights: list[TermWeights] = []
        for part in token_bounded_slices(self.token_lengths(texts), self.spec.max_batch_tokens):
            batch = list(texts[part])
            embeddings = self.model.encode_document(
                batch, batch_size=len(batch), convert_to_sparse_tensor=True, show_progress_bar=False
            )
            weights += self._decode(embeddings)
        return weights

    def encode_queries(self, texts: Sequence[str]) -> list[TermWeights]:
        embeddings = self.model.encode_query(
            list(texts), batch_size=max(1, len(texts)), convert_to_sparse_tensor=True, show_progress_bar=False
        )
        return self._decode(embeddings)

    def release_memory(self) -> None:
        if self.device == "cuda":
            import torch

            torch.cuda.empty_cache()
