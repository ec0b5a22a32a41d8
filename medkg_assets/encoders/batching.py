"""Adaptive batching: start from the profile's batch size, halve on out-of-memory, retry."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

Item = TypeVar("Item")
Output = TypeVar("Output")


def is_out_of_memory(error: BaseException) -> bool:
    """CUDA OOM (torch.OutOfMemoryError) or an allocator message saying the same."""
    try:
        import torch

        if isinstance(error, torch.OutOfMemoryError):
            return True
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass
    return "out of memory" in str(error).lower()


@dataclass
class BatchReport:
    """Which batch sizes were used and how many OOM retries it took."""

    sizes_used: list[int] = field(default_factory=list)
    oom_retries: int = 0

    @property
    def distinct_sizes(self) -> list[int]:
        return sorted(set(self.sizes_used), reverse=True)


def encode_in_batches(
    items: Sequence[Item],
    encode_batch: Callable[[Sequence[Item]], Sequence[Output]],
    batch_size: int,
    on_batch: Callable[[int], None] | None = None,
    release_memory: Callable[[], None] | None = None,
) -> tuple[list[Output], BatchReport]:
    """Encode `items` in order, one output per item; on OOM halve the batch and retry it."""
    report = BatchReport()
    outputs: list[Output] = []
    size = max(1, batch_size)
    position = 0
    while position < len(items):
        batch = items[position : position + size]
        try:
            vectors = encode_batch(batch)
        except Exception as error:
            if not is_out_of_memory(error) or size == 1:
                raise
            size = max(1, size // 2)
            report.oom_retries += 1
            if release_memory is not None:
                release_memory()
            continue
        outputs.extend(vectors)
        report.sizes_used.append(len(batch))
        position += len(batch)
        if on_batch is not None:
            on_batch(len(batch))
    return outputs, report


def token_bounded_slices(lengths: Sequence[int], max_batch_tokens: int) -> list[slice]:
    """Contiguous slices whose padded size (texts × longest text, in tokens) stays ≤ `max_batch_tokens`.

    What a transformer forward pass allocates grows with the padded batch (SPLADE's logits are
    batch × sequence × vocabulary), so bounding it by tokens, not by count, gives every batch the
    same memory ceiling whatever the text lengths; a single text longer than the budget still
    goes alone.
    """
    slices: list[slice] = []
    start, longest = 0, 0
    for position, length in enumerate(lengths):
        longest_with = max(longest, length)
        if position > start and longest_with * (position - start + 1) > max_batch_tokens:
            slices.append(slice(start, position))
            start, longest_with = position, length
        longest = longest_with
    if start < len(lengths):
        slices.append(slice(start, len(lengths)))
    return slices
