"""Dense-only hash parity: the dense artefact must not change unless its inputs did."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medkg_assets.storage.atomic import atomic_write_json, read_json_or


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
    """Compare with the recorded baseline for the same chunks and fingerprint.

    The first run, or a run whose chunks or profile fingerprint changed, records a new
    baseline; otherwise a differing hash fails (something other than the inputs changed).
    """
    baseline = read_json_or(baseline_path, None)
    same_inputs = (
        baseline is not None
        and baseline["chunks_digest"] == chunks_digest
        and baseline["fingerprint"] == fingerprint
    )
    if not same_inputs:
        atomic_write_json(
            baseline_path,
            {"chunks_digest": chunks_digest, "fingerprint": fingerprint, "dense_hash": dense_hash},
        )
        why = "first run" if baseline is None else "chunks or profile fingerprint changed"
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
