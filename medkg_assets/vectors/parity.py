"""Dense-only hash parity: the dense artefact must not change unless its inputs did."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medkg_assets.storage.atomic import atomic_write_json, read_json_or
from medkg_assets.vectors.hashing import HASH_SCHEME


@dataclass(frozen=True)
class ParityResult:
    passed: bool
    recorded: bool
    dense_hash: str
    baseline_hash: str
    reason: str


def evaluate_parity(
    baseline_path: Path, chunks_digest: str, fingerprint: str, dense_hash: str
) -> ParityResult:
    """Compare with the recorded baseline for the same chunks, fingerprint and hash scheme.

    The first run, or a run whose chunks, profile fingerprint or hash scheme changed, records a
    new baseline (a new scheme hashes the same vectors differently, which is not drift);
    otherwise a differing hash fails (something other than the inputs changed).
    """
    baseline = read_json_or(baseline_path, None)
    why = _rerecord_reason(baseline, chunks_digest, fingerprint)
    if baseline is None or why:
        atomic_write_json(
            baseline_path,
            {
                "scheme": HASH_SCHEME,
                "chunks_digest": chunks_digest,
                "fingerprint": fingerprint,
                "dense_hash": dense_hash,
            },
        )
        return ParityResult(True, True, dense_hash, dense_hash, f"baseline recorded ({why})")
    if baseline["dense_hash"] == dense_hash:
        return ParityResult(True, False, dense_hash, dense_hash, "matches the dense-only baseline")
    return ParityResult(
        False,
        False,
        dense_hash,
        baseline["dense_hash"],
        "dense artefact differs from the baseline for the same chunks and profile",
    )


def _rerecord_reason(baseline: dict[str, str] | None, chunks_digest: str, fingerprint: str) -> str:
    if baseline is None:
        return "first run"
    scheme = baseline.get("scheme", "sorted-sha256-v1")
    if scheme != HASH_SCHEME:
        return f"hash scheme changed from {scheme} to {HASH_SCHEME}"
    if baseline["chunks_digest"] != chunks_digest or baseline["fingerprint"] != fingerprint:
        return "chunks or profile fingerprint changed"
    return ""
