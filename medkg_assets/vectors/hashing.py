"""Order-independent hashes of artefacts, for parity checks and cache keys.

Both digests are multiset hashes: each item is hashed alone and the item digests are added
modulo 2**256, so a namespace is hashed one shard at a time, in any order, in constant memory
(sorting 24 M ids to hash them would hold them all). The scheme name is part of the digest and
of the parity baseline, so a baseline recorded under an older scheme is re-recorded, not failed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import numpy as np

HASH_SCHEME = "multiset-sha256-v2"
_MODULUS = 1 << 256


class MultisetDigest:
    """sha256(scheme, item count, sum of the items' sha256 mod 2**256): fed block by block."""

    def __init__(self, label: str):
        self.label = label
        self.count = 0
        self._sum = 0

    def add(self, item: bytes) -> None:
        self._sum = (self._sum + int.from_bytes(hashlib.sha256(item).digest(), "big")) % _MODULUS
        self.count += 1

    def hexdigest(self) -> str:
        head = f"{HASH_SCHEME}:{self.label}:{self.count}:".encode()
        return hashlib.sha256(head + self._sum.to_bytes(32, "big")).hexdigest()


class DenseDigest(MultisetDigest):
    """The dense artefact's identity: (chunk id, little-endian float32 bytes) per row."""

    def __init__(self) -> None:
        super().__init__("dense")

    def update(self, chunk_ids: Sequence[str], vectors: np.ndarray) -> None:
        as_float32 = np.ascontiguousarray(vectors, dtype="<f4")
        for row, chunk_id in enumerate(chunk_ids):
            self.add(chunk_id.encode() + b"\x00" + as_float32[row].tobytes())


class ChunksDigest(MultisetDigest):
    """The chunk set's identity: (chunk id, content hash) per chunk."""

    def __init__(self) -> None:
        super().__init__("chunks")

    def update(self, pairs: Iterable[tuple[str, str]]) -> None:
        for chunk_id, content_hash in pairs:
            self.add(f"{chunk_id}:{content_hash}".encode())


def dense_artifact_hash(blocks: Iterable[tuple[Sequence[str], np.ndarray]]) -> str:
    """Hash of (chunk ids, vectors) blocks, e.g. one per shard: row and block order do not matter."""
    digest = DenseDigest()
    for chunk_ids, vectors in blocks:
        digest.update(chunk_ids, vectors)
    return digest.hexdigest()


def chunks_digest(pairs: Iterable[tuple[str, str]]) -> str:
    """Digest of (chunk id, content hash) pairs: changes exactly when the chunk set changes."""
    digest = ChunksDigest()
    digest.update(pairs)
    return digest.hexdigest()
