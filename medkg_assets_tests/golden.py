"""Golden files for what a run on the bundled sample writes: `processing_summary.json` and the
rerank manifest must not change apart from run ids, timestamps, timings and absolute paths.

`python -m medkg_assets_tests.golden check DATA_DIR [NAMESPACE PROFILE]` compares a data dir
(the rollout drill's, in CI) with the goldens; `update` rewrites them after an intended change.
"""

from __future__ import annotations

import difflib
import json
import sys
from pathlib import Path
from typing import Any

from medkg_assets.settings import PROJECT_ROOT
from medkg_assets.storage.layout import ArtifactLayout

GOLDEN_DIR = Path(__file__).parent / "manifests_tests" / "golden"
# Values that differ on every run or machine by design.
VOLATILE_KEYS = {
    "run_id",
    "generated_at",
    "first_stage_seconds",
    "durations_s",
    "latency_ms",
    "gpu_peak_memory_bytes",
    "inputs_digest",  # covers the absolute models directory
}
FLOAT_DIGITS = 5


def normalise(value: Any, key: str | None = None) -> Any:
    """The comparable form: volatile values masked, floats rounded, the checkout path removed."""
    if key in VOLATILE_KEYS:
        return "<volatile>"
    if isinstance(value, dict):
        return {k: normalise(v, k) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    if isinstance(value, float):
        return round(value, FLOAT_DIGITS)
    if isinstance(value, str) and str(PROJECT_ROOT) in value:
        return value.replace(str(PROJECT_ROOT), "<project>")
    return value


def artefacts(data_dir: Path, namespace: str, profile: str) -> dict[str, Path]:
    layout = ArtifactLayout(data_dir)
    return {
        "processing_summary": layout.processing_summary(namespace, profile),
        "rerank_manifest": layout.rerank_manifest(namespace, profile),
    }


def golden_path(name: str, namespace: str, profile: str) -> Path:
    return GOLDEN_DIR / f"{namespace}__{profile}__{name}.json"


def differences(data_dir: Path, namespace: str = "medquad_sample", profile: str = "minilm_cpu") -> list[str]:
    """A unified diff per artefact that does not match its golden file (empty: all match)."""
    problems = []
    for name, path in artefacts(data_dir, namespace, profile).items():
        actual = json.dumps(normalise(json.loads(path.read_text())), indent=1, ensure_ascii=False)
        golden = golden_path(name, namespace, profile)
        expected = golden.read_text() if golden.exists() else ""
        if actual.strip() != expected.strip():
            diff = difflib.unified_diff(
                expected.splitlines(), actual.splitlines(), str(golden), str(path), lineterm="", n=2
            )
            problems.append("\n".join(list(diff)[:80]))
    return problems


def update(data_dir: Path, namespace: str = "medquad_sample", profile: str = "minilm_cpu") -> None:
    GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
    for name, path in artefacts(data_dir, namespace, profile).items():
        normalised = normalise(json.loads(path.read_text()))
        golden_path(name, namespace, profile).write_text(
            json.dumps(normalised, indent=1, ensure_ascii=False) + "\n"
        )


def main(argv: list[str]) -> int:
    command, data_dir, *rest = argv
    if command == "update":
        update(Path(data_dir), *rest)
        return 0
    problems = differences(Path(data_dir), *rest)
    for problem in problems:
        print(problem, file=sys.stderr)
    print("golden files: " + ("DIFFERENT" if problems else "match"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
