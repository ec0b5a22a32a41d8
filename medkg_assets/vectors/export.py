"""The per-chunk JSONL export shared by the dense and sparse artefacts (one record per chunk)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any


def chunk_records(
    chunk_ids: Sequence[str],
    doc_ids: Sequence[str],
    vectors: Iterable[Any],
    *,
    namespace: str,
    tenant_id: str,
    profile: str,
    fingerprint: str,
) -> Iterator[dict[str, Any]]:
    """`{"id", "vector", "metadata"}` records, the format downstream tools read."""
    for chunk_id, doc_id, vector in zip(chunk_ids, doc_ids, vectors, strict=True):
        yield {
            "id": chunk_id,
            "vector": vector,
            "metadata": {
                "doc_id": doc_id,
                "namespace": namespace,
                "tenant_id": tenant_id,
                "profile": profile,
                "fingerprint": fingerprint,
            },
        }
