"""Atomic writes: readers see the old artefact or the new one, never half of either."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux /proc)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _UMASK_LOCK:  # elsewhere: set and restore (briefly process-wide, hence the lock)
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode `open()` would give a new file: 0o666 less the umask."""
    return 0o666 & ~current_umask()


def directory_mode() -> int:
    """The mode `mkdir()` would give a new directory: 0o777 less the umask."""
    return 0o777 & ~current_umask()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file beside `path`, fsync, then rename over it.

    mkstemp creates the temp file 0600; it is given the umask's mode (as `open()` would) before
    the rename, so a separate serving user can read what the pipeline writes.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), file_mode())
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def canonical_json(value: Any) -> str:
    """JSON with sorted keys, so equal content gives equal bytes."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, indent=2) + "\n"


def atomic_write_json(path: Path, value: Any) -> None:
    atomic_write_text(path, canonical_json(value))


def jsonl_lines(records: Iterable[dict[str, Any]]) -> Iterator[str]:
    for record in records:
        yield json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n"


def atomic_write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> int:
    """Write JSON lines atomically; returns the number of records."""
    lines = list(jsonl_lines(records))
    atomic_write_text(path, "".join(lines))
    return len(lines)


def read_json_or(path: Path, default: Any) -> Any:
    """A JSON file's content, or `default` when it does not exist yet."""
    return json.loads(path.read_text()) if path.exists() else default


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return list(iter_jsonl(path))


def iter_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """JSON lines one at a time: a large file is never held whole."""
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def _directory_digest(directory: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(directory)).encode())
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


class VersionedDirectory:
    """A directory artefact published atomically: `versions/<digest>/` plus a `CURRENT` pointer.

    A build writes into a temp folder; only a complete build is renamed into `versions/` and
    the pointer is swapped with an atomic rename, so a failed build leaves the last good
    version live. Equal content gets the same digest, so reruns are idempotent.
    """

    def __init__(self, root: Path, keep: int = 2, pinned: frozenset[str] = frozenset()):
        self.root = root
        self.keep = keep
        self.pinned = pinned  # versions that are never pruned (e.g. the one in use)

    @property
    def current(self) -> Path | None:
        pointer = self.root / "CURRENT"
        if not pointer.exists():
            return None
        path = self.version(pointer.read_text().strip())
        return path if path.is_dir() else None

    def version(self, name: str) -> Path:
        return self.root / "versions" / name

    def require_current(self, what: str) -> Path:
        current = self.current
        if current is None:
            raise FileNotFoundError(f"{what} has not been materialised yet (no {self.root}/CURRENT)")
        return current

    @contextmanager
    def build(self) -> Iterator[Path]:
        """Yield a scratch directory; publish it only if the block finishes without error."""
        self.root.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".build-", dir=self.root))
        try:
            os.chmod(scratch, directory_mode())  # mkdtemp makes it 0700; the version keeps this mode
            yield scratch
            version = _directory_digest(scratch)
            target = self.version(version)
            if target.exists():
                shutil.rmtree(scratch)
            else:
                target.parent.mkdir(exist_ok=True)
                os.replace(scratch, target)
            atomic_write_text(self.root / "CURRENT", version + "\n")
            self._prune(version)
        finally:
            if scratch.exists():
                shutil.rmtree(scratch, ignore_errors=True)

    def _prune(self, live: str) -> None:
        versions = sorted(
            (p for p in (self.root / "versions").iterdir() if p.name != live and p.name not in self.pinned),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        for old in versions[self.keep - 1 :]:
            shutil.rmtree(old, ignore_errors=True)
