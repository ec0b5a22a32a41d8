"""Content fingerprints of namespace sources: what the re-ingestion sensor compares between ticks."""

from __future__ import annotations

import hashlib
from pathlib import Path

from medkg_assets.text.documents import source_files


def source_fingerprint(source: Path) -> str:
    """sha256 over (relative path, content digest) of every supported file, in sorted order.

    Adding, changing or deleting a document changes it; touching a file without changing its
    bytes does not.
    """
    base = source if source.is_dir() else source.parent
    digest = hashlib.sha256()
    for path in source_files(source):
        content = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                content.update(block)
        digest.update(f"{path.relative_to(base)}\0{content.hexdigest()}\n".encode())
    return digest.hexdigest()
