"""Encode only what the cache lacks: the shared core of the dense and sparse stages."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from numpy.typing import NDArray

from medkg_assets.encoders.batching import encode_in_batches
from medkg_assets.progress import Progress
from medkg_assets.text.chunking import Chunk
from medkg_assets.vectors.cache import CachePlan, assemble, plan_cache


@dataclass
class CachedRows:
    """The previous artefact, seen as a cache: its key, row content hashes and row values."""

    cache_key: str
    content_hashes: Sequence[str]
    items: Sequence[Any] | NDArray[Any]  # rows: a list of term maps, or a matrix of vectors


@dataclass
class IncrementalResult:
    items: list[Any]  # one per chunk, in chunk order
    plan: CachePlan
    encoded: int  # distinct texts encoded in this run
    batch_sizes: list[int] = field(default_factory=list)
    device: str = "none"
    provider: str = "cache"


def encode_incrementally(
    chunks: Sequence[Chunk],
    cache_key: str,
    previous: CachedRows | None,
    open_encoder: Callable[[], Any],
    encode: Callable[[Any], Callable[[Sequence[str]], Sequence[Any]]],
    batch_size: int,
    log: Callable[[str], None],
    label: str,
    validate: Callable[[Sequence[Any], list[str]], None] | None = None,
) -> IncrementalResult:
    """Reuse cached rows, encode each missing distinct text once (adaptive batches), validate them.

    `open_encoder` is called only when something must be encoded, so a fully cached run never
    loads a model; `encode(encoder)` picks the encoder's method for this stage.
    """
    content_hashes = [c.content_hash for c in chunks]
    plan = plan_cache(
        content_hashes,
        cache_key,
        previous.cache_key if previous else None,
        previous.content_hashes if previous else [],
    )
    pending = plan.texts_to_encode(content_hashes)
    result = IncrementalResult(items=[], plan=plan, encoded=len(pending))
    encoded_by_hash: dict[str, Any] = {}
    if pending:
        progress = Progress(label, len(pending), log)
        try:
            encoder = open_encoder()
            result.device, result.provider = encoder.device, encoder.provider
            texts = [chunks[row].model_input for row in pending.values()]
            # Longest first: batches of similar length pad less (as one big encode() call would
            # sort them), and an out-of-memory batch shows up at the start, not at the end.
            order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
            encoded_sorted, report = encode_in_batches(
                [texts[i] for i in order],
                encode(encoder),
                batch_size,
                progress.advance,
                encoder.release_memory,
            )
            encoded = [None] * len(texts)
            for position, original in enumerate(order):
                encoded[original] = encoded_sorted[position]
            if validate is not None:
                validate(encoded, [chunks[row].chunk_id for row in pending.values()])
        finally:
            progress.close()
        result.batch_sizes = report.distinct_sizes
        encoded_by_hash = dict(zip(pending, encoded, strict=True))
    result.items = assemble(plan, content_hashes, previous.items if previous else [], encoded_by_hash)
    return result
