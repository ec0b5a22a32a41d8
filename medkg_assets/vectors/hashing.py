"""Order-independent hashes of artefacts, for parity checks and cache keys."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np


def dense_artifact_hash(chunk_ids: list[str], vectors: np.ndarray) -> str:
    """sha256 over (chunk id, float32 bytes) pairs sorted by id: row order does not matter."""
    digest = hashlib.sha256()
    as_float32 = np.ascontiguousarray(vectors, dtype="<f4")
    for row in sorted(range(len(chunk_ids)), key=chunk_ids.__getitem__):
        digest.update(chunk_ids[row].encode())
        digest.update(b"\x00")
        digest.update(as_float32[row].tobytes())
    return digest.hexdigest()


def chunks_digest(pairs: Iterable[tuple[str, str]]) -> str:
    """Digest of (chunk id, content hash) pairs: changes exactly when the chunk set changes."""
    digest = hashlib.sha256()
    for chunk_id, content_hash in sorted(pairs):
        digest.update(f"{chunk_id}:{content_hash}\n".encode())
    return digest.hexdigest()
