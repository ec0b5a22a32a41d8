"""A crash costs at most the shard in flight: `medkg run` killed with SIGKILL during the dense and
then the sparse stage, rerun, encodes only the shards that had not finished, and ends with the
same bytes as a run that was never interrupted."""

import os
import signal
import subprocess
from pathlib import Path

import pytest

from medkg_assets.storage.layout import ArtifactLayout
from medkg_assets_tests.automation_tests.test_stale_runs import (
    medkg_env,
    open_instance,
    start_medkg,
    wait_for,
)
from medkg_assets_tests.pipeline import tree_bytes

pytestmark = pytest.mark.slow
PROFILE = "minilm_cpu"
SHARD_STEPS = {
    "dense": "dense_embeddings.dense_embeddings_shard",
    "sparse": "sparse_vectors.sparse_vectors_shard",
}


def run_to_end(env: dict[str, str], log: Path) -> str:
    process = start_medkg(env, log, "run", "--namespace", "tiny", "--profile", PROFILE)
    try:
        process.wait(timeout=600)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"medkg run did not finish:\n{log.read_text()[-3000:]}")
    output = log.read_text()
    assert process.returncode == 0, output[-3000:]
    return output


def finished_shards(data_dir: Path, stage: str) -> dict[str, int]:
    """The shard outputs `stage` has saved: file → modification time (ns)."""
    store = getattr(ArtifactLayout(data_dir), stage)("tiny", PROFILE)
    return {p.name: p.stat().st_mtime_ns for p in (store.root / "work").glob("*.parquet")}


def kill_after_first_shard(env: dict[str, str], log: Path, stage: str) -> tuple[dict[str, int], str]:
    """Start a run, SIGKILL its whole process group once `stage` has saved a shard; what was saved."""
    data_dir = Path(env["MEDKG_DATA_DIR"])
    process = start_medkg(env, log, "run", "--namespace", "tiny", "--profile", PROFILE)
    wait_for(lambda: finished_shards(data_dir, stage), 300, process, log, f"a finished {stage} shard")
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    [latest] = open_instance(env).get_run_records(limit=1)
    return finished_shards(data_dir, stage), latest.dagster_run.run_id


def shard_steps_started_not_finished(env: dict[str, str], run_id: str, stage: str) -> list[str]:
    """Shard steps of `stage` the killed run had started but not finished (what a crash can lose)."""
    events = open_instance(env).all_logs(run_id)
    started = {
        e.step_key for e in events if e.dagster_event and e.dagster_event.event_type_value == "STEP_START"
    }
    done = {
        e.step_key for e in events if e.dagster_event and e.dagster_event.event_type_value == "STEP_SUCCESS"
    }
    return sorted(k for k in started - done if k and k.startswith(SHARD_STEPS[stage]))


def test_kill_9_during_dense_and_sparse_then_rerun_matches_an_uninterrupted_run(tmp_path):
    reference_env = medkg_env(tmp_path / "reference")
    run_to_end(reference_env, tmp_path / "reference.log")
    reference = ArtifactLayout(Path(reference_env["MEDKG_DATA_DIR"]))

    env = medkg_env(tmp_path / "killed")
    data = ArtifactLayout(Path(env["MEDKG_DATA_DIR"]))
    dense_saved, dense_run = kill_after_first_shard(env, tmp_path / "kill-dense.log", "dense")
    in_flight = shard_steps_started_not_finished(env, dense_run, "dense")
    assert len(in_flight) <= 1, in_flight  # the gpu pool runs one shard step at a time
    assert data.dense("tiny", PROFILE).current is None  # nothing half-published

    sparse_saved, sparse_run = kill_after_first_shard(env, tmp_path / "kill-sparse.log", "sparse")
    assert len(shard_steps_started_not_finished(env, sparse_run, "sparse")) <= 1
    output = run_to_end(env, tmp_path / "final.log")
    assert "processing_summary" in output

    for stage, saved in (("dense", dense_saved), ("sparse", sparse_saved)):
        now = finished_shards(data.data_dir, stage)
        # Every shard saved before the kill was kept as it was (never encoded again); with at most
        # one shard step in flight at the kill, at most one shard's work was lost.
        assert saved and all(now[name] == mtime for name, mtime in saved.items()), stage
        published = getattr(data, stage)("tiny", PROFILE).current
        assert len(now) == len(list((published / "shards").glob("*.parquet"))) >= 2, stage
    for stage in ("dense", "sparse", "faiss"):
        ours = getattr(data, stage)("tiny", PROFILE).current
        theirs = getattr(reference, stage)("tiny", PROFILE).current
        assert ours.name == theirs.name, stage  # the version name is a digest of its bytes
        assert tree_bytes(ours) == tree_bytes(theirs), stage
