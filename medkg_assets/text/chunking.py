"""Deterministic, token-aware chunking: fixed token windows with overlap, cut on token edges."""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from medkg_assets.model_reference import resolve_model
from medkg_assets.text.documents import Document

WHITESPACE_TOKENIZER = "whitespace"


class TokenOffsets(Protocol):
    def __call__(self, text: str) -> list[tuple[int, int]]: ...


def _whitespace_offsets(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]


def load_tokenizer(reference: str, models_dir: Path | None = None) -> TokenOffsets:
    """Character offsets of each token, from the model's own `tokenizer.json` (or whitespace)."""
    if reference == WHITESPACE_TOKENIZER:
        return _whitespace_offsets
    from tokenizers import Tokenizer

    resolved = resolve_model(reference, models_dir)
    if not resolved.is_local:
        tokenizer = Tokenizer.from_pretrained(resolved.location)
    else:
        tokenizer = Tokenizer.from_file(str(Path(resolved.location) / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()

    def offsets(text: str) -> list[tuple[int, int]]:
        return [span for span in tokenizer.encode(text, add_special_tokens=False).offsets]

    return offsets


@dataclass(frozen=True)
class Chunk:
    chunk_id: str
    doc_id: str
    namespace: str
    tenant_id: str
    position: int
    start_char: int
    end_char: int
    token_count: int
    title: str
    text: str
    content_hash: str

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Chunk:
        return cls(**record)

    @property
    def model_input(self) -> str:
        """What encoders see: the title gives short answers their subject."""
        return f"{self.title}: {self.text}" if self.title else self.text


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def chunk_document(
    document: Document,
    tokens: TokenOffsets,
    window: int,
    overlap: int,
    namespace: str,
    tenant_id: str,
) -> list[Chunk]:
    """Split one document into windows of at most `window` tokens, `overlap` tokens shared."""
    spans = tokens(document.text)
    # A word is a run of touching tokens; windows never start or end inside one, so a chunk
    # re-tokenises to the same tokens (a word longer than a window is the only exception).
    word_starts = [i == 0 or spans[i][0] > spans[i - 1][1] for i in range(len(spans))]

    def back_to_word_start(index: int, floor: int) -> int:
        for candidate in range(index, floor, -1):
            if word_starts[candidate]:
                return candidate
        return index

    chunks: list[Chunk] = []
    start = 0
    while start < len(spans):
        end = min(start + window, len(spans))
        if end < len(spans):
            end = back_to_word_start(end, start)
        first, last = spans[start][0], spans[end - 1][1]
        text = document.text[first:last]
        text_hash = _digest(text)
        chunks.append(
            Chunk(
                chunk_id=_digest(document.doc_id, str(len(chunks)), text_hash)[:24],
                doc_id=document.doc_id,
                namespace=namespace,
                tenant_id=tenant_id,
                position=len(chunks),
                start_char=first,
                end_char=last,
                token_count=end - start,
                title=document.title,
                text=text,
                content_hash=_digest(document.title, text),
            )
        )
        if end == len(spans):
            break
        start = max(back_to_word_start(end - overlap, start), start + 1)
    return chunks
