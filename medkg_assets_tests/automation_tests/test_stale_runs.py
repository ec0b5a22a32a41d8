"""A dead run never blocks the next: `medkg run` frees the pool claims of a SIGKILLed run, and a run
that waits on a pool held by a live run says what it waits on and stops on SIGTERM."""

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus

from medkg_assets.automation.pool_wait import job_pools
from medkg_assets.automation.stale_runs import (
    HOST_TAG,
    PROCESS_START_TAG,
    process_alive,
    process_tags,
    release_dead_runs,
)
from medkg_assets.settings import PROJECT_ROOT
from medkg_assets_tests.conftest import make_tiny_project
from medkg_assets_tests.processes import stop_process_group

GPU = "gpu"
DAGSTER_DAEMON = str(Path(sys.executable).with_name("dagster-daemon"))


def medkg_env(tmp_path: Path) -> dict[str, str]:
    """Environment of a `medkg` subprocess on a tiny project with its own instance."""
    config_dir = make_tiny_project(tmp_path / "project")
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    return {
        **os.environ,
        "MEDKG_CONFIG_DIR": str(config_dir),
        "MEDKG_DATA_DIR": str(tmp_path / "data"),
        "DAGSTER_HOME": str(home),
        "MEDKG_ENV": "test",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
    }


def start_medkg(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "medkg_assets.cli", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=PROJECT_ROOT,
            env=env,
            start_new_session=True,
        )


def open_instance(env: dict[str, str]) -> DagsterInstance:
    return DagsterInstance.from_config(env["DAGSTER_HOME"])


def wait_for(predicate, timeout_s: float, process: subprocess.Popen, log: Path, what: str):
    """Poll `predicate` until it returns something truthy; fail with the log tail otherwise."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        if process.poll() is not None:
            pytest.fail(f"medkg exited ({process.returncode}) before {what}:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    process.kill()
    pytest.fail(f"no {what} after {timeout_s}s:\n{log.read_text()[-3000:]}")


def gpu_claims(instance: DagsterInstance) -> list:
    return list(instance.event_log_storage.get_concurrency_info(GPU).claimed_slots)


def gpu_pending(instance: DagsterInstance) -> list:
    return list(instance.event_log_storage.get_concurrency_info(GPU).pending_steps)


def assert_sleeps_then_stops_on(waiter, signum, log) -> str:
    """The waiting process uses < 1 s of CPU in 3 s, and `signum` stops it within 10 s with
    exit status 128 + signum; returns its output."""
    before = cpu_seconds(waiter.pid)
    time.sleep(3)
    assert cpu_seconds(waiter.pid) - before < 1.0, "the waiting run busy-waits"
    sent = time.monotonic()
    os.kill(waiter.pid, signum)
    try:
        waiter.wait(timeout=15)
    except subprocess.TimeoutExpired:
        waiter.kill()
        pytest.fail(f"{signum.name} did not stop the waiting run:\n{log.read_text()[-3000:]}")
    assert time.monotonic() - sent < 10
    output = log.read_text()
    assert waiter.returncode == 128 + signum, output[-3000:]
    return output


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.fixture
def local_instance(tmp_path, monkeypatch):
    """A SQLite instance from the project's dagster.yaml in a temp DAGSTER_HOME (as `medkg` uses)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with DagsterInstance.from_config(str(home)) as instance:
        yield instance


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def holding_run(instance, tags, status=DagsterRunStatus.STARTED, step_key="hold_gpu") -> str:
    """A run record with `tags` whose step holds (or queues for) the gpu pool."""
    from medkg_assets_tests.automation_tests.gpu_holder import gpu_holder_job

    run = instance.create_run_for_job(job_def=gpu_holder_job, tags=tags, status=status)
    instance.event_log_storage.initialize_concurrency_limit_to_default(GPU)  # as a first claim does
    instance.event_log_storage.claim_concurrency_slot(GPU, run.run_id, step_key)
    return run.run_id


def test_the_local_instance_yaml_enables_run_monitoring_and_frees_finished_runs_slots(local_instance):
    assert local_instance.run_monitoring_enabled
    settings = local_instance.run_monitoring_settings
    assert settings["free_slots_after_run_end_seconds"] == 60
    assert settings["start_timeout_seconds"] == settings["cancel_timeout_seconds"] == 180
    assert local_instance.event_log_storage.get_pool_config().default_pool_limit == 1
    assert local_instance.event_log_storage.supports_global_concurrency_limits


def test_process_alive_tells_a_live_process_from_a_dead_or_reused_pid():
    mine = process_tags()
    assert process_alive(mine) is True
    assert process_alive(process_tags(dead_pid())) is False
    if PROCESS_START_TAG in mine:  # Linux: a pid now used by another process is not the run's
        assert process_alive({**mine, PROCESS_START_TAG: str(int(mine[PROCESS_START_TAG]) - 1)}) is False
    assert process_alive({**mine, HOST_TAG: "another-host"}) is None
    assert process_alive({}) is None


def test_release_dead_runs_frees_a_dead_medkg_run_and_hands_its_slot_on(local_instance):
    instance = local_instance
    dead_pid_ = dead_pid()
    dead = holding_run(instance, process_tags(dead_pid_))
    live = holding_run(instance, process_tags())  # queued behind the dead one (limit 1)
    foreign = holding_run(instance, {}, step_key="other_step")  # not a medkg run: left alone
    assert {c.run_id for c in gpu_claims(instance)} == {dead}

    released = release_dead_runs(instance)

    assert [r.run_id for r in released] == [dead]
    line = released[0].describe()
    assert line.startswith(f"freed dead run {dead} (gpu_holder_job, medkg pid {dead_pid_} on ")
    assert "gone): marked FAILURE (was STARTED); freed gpu: hold_gpu (held)" in line
    assert instance.get_run_by_id(dead).status == DagsterRunStatus.FAILURE
    assert instance.get_run_by_id(live).status == instance.get_run_by_id(foreign).status
    assert instance.get_run_by_id(live).status == DagsterRunStatus.STARTED
    assert not [p for p in gpu_pending(instance) if p.run_id == dead]
    # the slot went to a claim queued behind it (SQLite orders claims queued in the same second
    # arbitrarily, so either waiting run may be first)
    storage = instance.event_log_storage
    claimed = [
        storage.claim_concurrency_slot(GPU, run_id, step).is_claimed
        for run_id, step in ((live, "hold_gpu"), (foreign, "other_step"))
    ]
    assert claimed.count(True) == 1
    assert release_dead_runs(instance) == []


@pytest.mark.parametrize("grace, freed", [(60, False), (0, True)])
def test_release_dead_runs_frees_finished_runs_claims_after_the_grace_period(
    local_instance, tmp_path, grace, freed
):
    home = tmp_path / "dagster_home"
    settings = (
        (home / "dagster.yaml")
        .read_text()
        .replace("free_slots_after_run_end_seconds: 60", f"free_slots_after_run_end_seconds: {grace}")
    )
    (home / "dagster.yaml").write_text(settings)
    with DagsterInstance.from_config(str(home)) as instance:
        run_id = holding_run(instance, {})
        # what "Terminate" → force termination in the UI does: CANCELED, the slot stays claimed
        instance.report_run_canceled(instance.get_run_by_id(run_id))
        time.sleep(1.1)
        released = release_dead_runs(instance)
        assert [r.run_id for r in released] == ([run_id] if freed else [])
        assert bool(gpu_claims(instance)) is not freed
        if freed:
            assert released[0].describe().startswith(f"freed claims of canceled run {run_id} ")


def test_release_run_command_frees_a_named_run_but_not_a_live_medkg_run(local_instance, capsys):
    from medkg_assets.cli import main

    instance = local_instance
    other = holding_run(instance, {})  # e.g. a run of `dagster dev` whose worker was killed
    live = holding_run(instance, process_tags(), step_key="queued_step")

    assert main(["release-run", live]) == 1
    assert "still executed by a live process" in capsys.readouterr().err
    assert instance.get_run_by_id(live).status == DagsterRunStatus.STARTED

    assert main(["release-run", other]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"freed dead run {other} (gpu_holder_job, not a medkg run): marked FAILURE")
    assert "freed gpu: hold_gpu (held)" in out
    assert instance.get_run_by_id(other).status == DagsterRunStatus.FAILURE
    # the live run's queued step got the slot
    assert [(c.run_id, c.step_key) for c in gpu_claims(instance)] == []
    assert instance.event_log_storage.claim_concurrency_slot(GPU, live, "queued_step").is_claimed

    assert main(["release-run", "no-such-run"]) == 1
    assert "no run no-such-run" in capsys.readouterr().err


def test_job_pools_reads_the_pools_of_a_jobs_ops():
    from medkg_assets_tests.automation_tests.gpu_holder import gpu_holder_job

    assert job_pools(gpu_holder_job) == {GPU}


@pytest.mark.slow
def test_a_run_killed_in_the_dense_step_does_not_block_the_next(tmp_path):
    env = medkg_env(tmp_path)
    instance = open_instance(env)
    first_log = tmp_path / "first.log"
    first = start_medkg(env, first_log, "run", "--namespace", "tiny")
    holder = wait_for(
        lambda: [c for c in gpu_claims(instance) if c.step_key.startswith("dense_embeddings.")],
        120,
        first,
        first_log,
        "dense_embeddings holding the gpu pool",
    )[0]
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    dead = instance.get_run_by_id(holder.run_id)
    assert dead is not None and not dead.is_finished  # the kill left it STARTED, holding the slot

    second_log = tmp_path / "second.log"
    second = start_medkg(env, second_log, "run", "--namespace", "tiny")
    try:
        second.wait(timeout=150)
    except subprocess.TimeoutExpired:
        second.kill()
        pytest.fail(f"the second run did not finish:\n{second_log.read_text()[-3000:]}")
    output = second_log.read_text()
    assert second.returncode == 0, output[-3000:]
    freed = [line for line in output.splitlines() if line.startswith("freed dead run")]
    assert len(freed) == 1, output[-3000:]
    assert holder.run_id in freed[0] and f"pid {first.pid}" in freed[0]
    assert "gpu" in freed[0] and "dense_embeddings" in freed[0]
    assert "processing_summary" in output
    released = instance.get_run_by_id(holder.run_id)
    assert released.status.value == "FAILURE"
    assert not [c for c in gpu_claims(instance) if c.run_id == holder.run_id]
    assert not [p for p in gpu_pending(instance) if p.run_id == holder.run_id]


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_run_waiting_on_a_live_holder_reports_it_and_stops_on_a_signal(tmp_path, signum):
    from medkg_assets_tests.automation_tests.gpu_holder import hold_gpu_pool

    env = medkg_env(tmp_path)
    instance = open_instance(env)
    release = threading.Event()
    # A live run of this test process, tagged like a medkg run, holds the gpu slot.
    holder = hold_gpu_pool(instance, release, tags=process_tags())
    try:
        log = tmp_path / "waiter.log"
        waiter = start_medkg(env, log, "run", "--namespace", "tiny")
        line = wait_for(
            lambda: next((x for x in log.read_text().splitlines() if "waiting for pool gpu" in x), None),
            90,
            waiter,
            log,
            "report of the wait",
        )
        assert holder.run_id in line, line
        output = assert_sleeps_then_stops_on(waiter, signum, log)
        assert f"{signum.name} while waiting for a pool slot before the run started (index_job" in output
        # The live holder keeps its slot; the waiter left no claim behind.
        assert [c.run_id for c in gpu_claims(instance)] == [holder.run_id]
        assert {p.run_id for p in gpu_pending(instance)} == {holder.run_id}
    finally:
        release.set()
        holder.join(timeout=60)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_run_waiting_inside_dagsters_executor_reports_it_and_stops_on_a_signal(tmp_path, signum):
    """The pool was free when the run started, then taken before its gpu step: Dagster's own wait."""
    from medkg_assets_tests.automation_tests.gpu_holder import hold_gpu_pool

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "POOL_WAIT_DIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    instance = open_instance(env)
    log = tmp_path / "waiter.log"
    with log.open("w") as out:
        waiter = subprocess.Popen(
            [sys.executable, "-m", "medkg_assets_tests.automation_tests.pool_wait_script"],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=PROJECT_ROOT,
            env=env,
            start_new_session=True,
        )
    release = threading.Event()
    holder = None
    try:
        wait_for(lambda: (tmp_path / "ready").exists(), 60, waiter, log, "first step")
        holder = hold_gpu_pool(instance, release)
        (tmp_path / "go").touch()
        line = wait_for(
            lambda: next((x for x in log.read_text().splitlines() if "waiting for pool gpu" in x), None),
            30,
            waiter,
            log,
            "report of the wait",
        )
        run_id = line.split()[1]
        assert line.startswith(f"run {run_id} waiting for pool gpu (limit 1): held by run {holder.run_id}")
        assert [p.run_id for p in gpu_pending(instance) if p.assigned_timestamp is None] == [run_id]
        output = assert_sleeps_then_stops_on(waiter, signum, log)
        assert f"{signum.name}: stopped; run {run_id} of pool_wait_job was canceled while it waited" in output
        assert instance.get_run_by_id(run_id).status.value == "CANCELED"
        assert not [p for p in gpu_pending(instance) if p.run_id == run_id]
        assert [c.run_id for c in gpu_claims(instance)] == [holder.run_id]
    finally:
        release.set()
        if holder is not None:
            holder.join(timeout=60)
        if waiter.poll() is None:
            waiter.kill()


@pytest.mark.slow
def test_the_daemons_run_monitoring_frees_a_force_terminated_run_but_not_a_dead_started_one(tmp_path):
    """With the project's run_monitoring (intervals shortened), `dagster-daemon` — as `make dev`
    runs it — gives back the slot of a run force-terminated in the UI (CANCELED), after the grace
    period; a STARTED run whose process died it cannot see (the local launcher has no health check)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    settings = (PROJECT_ROOT / "dagster.yaml").read_text()
    for before, after in (
        ("poll_interval_seconds: 30", "poll_interval_seconds: 1"),
        ("free_slots_after_run_end_seconds: 60", "free_slots_after_run_end_seconds: 2"),
    ):
        assert before in settings
        settings = settings.replace(before, after)
    (home / "dagster.yaml").write_text(settings)
    env = {**os.environ, "DAGSTER_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    with DagsterInstance.from_config(str(home)) as instance:
        dead = holding_run(instance, process_tags(dead_pid()))
        log = tmp_path / "daemon.log"
        with log.open("w") as out:
            daemon = subprocess.Popen(
                [DAGSTER_DAEMON, "run", "-m", "medkg_assets_tests.automation_tests.gpu_holder"],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=PROJECT_ROOT,
                env=env,
                start_new_session=True,
            )
        try:
            wait_for(lambda: "Checking run " + dead in log.read_text(), 90, daemon, log, "monitoring")
            time.sleep(4)  # several monitoring iterations
            assert instance.get_run_by_id(dead).status == DagsterRunStatus.STARTED
            assert [c.run_id for c in gpu_claims(instance)] == [dead]

            instance.report_run_canceled(instance.get_run_by_id(dead))  # UI: Terminate → force
            # (the daemon frees silently: its "Freed … slots" line tests a return value that is None)
            wait_for(lambda: not gpu_pending(instance), 30, daemon, log, "slot freed by the daemon")
            assert not gpu_claims(instance)
        finally:
            stop_process_group(daemon)
