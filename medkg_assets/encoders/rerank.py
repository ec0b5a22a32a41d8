"""CrossEncoder reranking; refuses models without a trained relevance head."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from medkg_assets.encoders.errors import ModelLoadError
from medkg_assets.model_reference import ModelNotFoundError, resolve_model

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder


class RerankerUnavailableError(ModelLoadError):
    """The configured reranker cannot be used; the stage records a warning instead of scores."""


@lru_cache(maxsize=2)
def _load_cross_encoder(location: str, device: str, max_length: int) -> CrossEncoder:
    from sentence_transformers import CrossEncoder

    # CrossEncoder.__init__ carries an untyped decorator, so the call itself is typed Any.
    model: CrossEncoder = CrossEncoder(location, device=device, max_length=max_length)
    return model


def _require_trained_head(location: str) -> None:
    """A local folder must hold a sequence-classification model; an encoder-only checkpoint would get
    a freshly initialised head — random scores dressed up as a reranker."""
    config = Path(location) / "config.json"
    if not config.exists():
        return
    architectures = json.loads(config.read_text()).get("architectures") or []
    if not any(name.endswith("ForSequenceClassification") for name in architectures):
        raise RerankerUnavailableError(
            f"{location} is not a cross-encoder (architectures {architectures}); loading it would attach an "
            "untrained classification head. Point the profile's reranker at a trained CrossEncoder."
        )


class CrossEncoderReranker:
    """Scores (query, passage) pairs; higher is more relevant."""

    def __init__(
        self,
        reference: str,
        device: str,
        max_length: int,
        models_dir: Path | None = None,
        max_query_tokens: int | None = None,
    ):
        try:
            resolved = resolve_model(reference, models_dir)
            if resolved.is_local:
                _require_trained_head(resolved.location)
            self.model = _load_cross_encoder(resolved.location, device, max_length)
        except RerankerUnavailableError:
            raise
        except (ModelNotFoundError, OSError, ValueError) as error:
            raise RerankerUnavailableError(f"cannot load reranker {reference!r}: {error}") from error
        self.reference, self.device = reference, device
        self.max_query_tokens = max_query_tokens

    def fit_query(self, query: str) -> str:
        """The query cut to its first `max_query_tokens` word pieces (whole, at their character
        offsets, so the text is not re-spelled); unchanged when it fits or no cap is set."""
        if self.max_query_tokens is None:
            return query
        encoded = self.model.tokenizer(query, add_special_tokens=False, return_offsets_mapping=True)
        offsets = encoded["offset_mapping"]
        if len(offsets) <= self.max_query_tokens:
            return query
        return query[: offsets[self.max_query_tokens - 1][1]]

    def score(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        if not pairs:
            return []
        fitted = {query: self.fit_query(query) for query in {q for q, _ in pairs}}
        inputs = [(fitted[query], passage) for query, passage in pairs]
        scores = self.model.predict(inputs, batch_size=len(inputs), show_progress_bar=False)
        return [float(s) for s in scores]

    def release_memory(self) -> None:
        if self.device == "cuda":
            import torch

            torch.cuda.empty_cache()
