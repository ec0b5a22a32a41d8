"""Token budgets: every chunk an encoder sees fits the namespace's `max_tokens` under the profile's
tokenizer (chunks are cut with the namespace's tokenizer, which may count differently)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from medkg_assets.text.chunking import Chunk, TokenOffsets, chunk_document
from medkg_assets.text.documents import Document

OverBudgetPolicy = Literal["resplit", "reject"]


@dataclass(frozen=True)
class BudgetResult:
    """The chunks to encode and what the budget did to the others."""

    chunks: list[Chunk]
    over_budget: int
    resplit: int
    rejected: list[str]

    @property
    def outcome_counts(self) -> dict[str, int]:
        return {"resplit": self.resplit, "rejected": len(self.rejected)}


def _resplit(chunk: Chunk, tokens: TokenOffsets, max_tokens: int) -> list[Chunk]:
    """Cut an over-budget chunk into windows that fit, keeping its document and character offsets."""
    parent = Document(doc_id=chunk.doc_id, title=chunk.title, text=chunk.text, source="", line=None)
    pieces = chunk_document(parent, tokens, max_tokens, 0, chunk.namespace, chunk.tenant_id)
    return [
        replace(
            piece,
            chunk_id=f"{chunk.chunk_id}.{index}",
            position=chunk.position,
            start_char=chunk.start_char + piece.start_char,
            end_char=chunk.start_char + piece.end_char,
        )
        for index, piece in enumerate(pieces)
    ]


def apply_token_budget(
    chunks: list[Chunk], tokens: TokenOffsets, max_tokens: int, policy: OverBudgetPolicy
) -> BudgetResult:
    """Keep chunks within `max_tokens`; re-split or drop (per `policy`) the ones above it, in order."""
    kept: list[Chunk] = []
    over, resplit, rejected = 0, 0, []
    for chunk in chunks:
        if len(tokens(chunk.text)) <= max_tokens:
            kept.append(chunk)
            continue
        over += 1
        if policy == "reject":
            rejected.append(chunk.chunk_id)
        else:
            kept += _resplit(chunk, tokens, max_tokens)
            resplit += 1
    return BudgetResult(chunks=kept, over_budget=over, resplit=resplit, rejected=rejected)
