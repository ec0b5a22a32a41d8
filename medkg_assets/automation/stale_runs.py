"""Runs whose process is gone, and the pool claims they leave behind.

`medkg run` executes jobs in its own process (`execute_in_process`): no run launcher and no daemon
watches that process, so a run killed with SIGKILL stays STARTED for ever and keeps its slot of the
`gpu` pool (limit 1) and its queued claims; every later run then waits behind it. Dagster's run
monitoring cannot help, because the local run launcher has no worker health check: it only frees
the claims of runs that have *finished* (`free_slots_after_run_end_seconds`).

So `medkg run` tags its runs with the pid, host and start time of its process (`process_tags`);
before starting, `release_dead_runs` marks FAILURE the runs of this host whose process is gone
(or whose pid now belongs to another process) and frees their claims, and frees the claims that
finished runs still hold past the instance's grace period. `release_run` is the same release for a
run the operator names (`medkg release-run`), e.g. one started by another tool.
Public instance and event-log-storage methods only; no import of the assets.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, RunsFilter

PID_TAG = "medkg/pid"
HOST_TAG = "medkg/host"
PROCESS_START_TAG = "medkg/process_start"
# Statuses in which a run may still hold or queue pool claims while its process is gone.
UNFINISHED_STATUSES = [
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]


def _process_start(pid: int) -> str | None:
    """The kernel's start time of `pid` (clock ticks since boot), or None where /proc is absent."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[19]


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def process_tags(pid: int | None = None) -> dict[str, str]:
    """Run tags naming the process that executes the run (default: this one)."""
    pid = os.getpid() if pid is None else pid
    tags = {PID_TAG: str(pid), HOST_TAG: socket.gethostname()}
    start = _process_start(pid)
    if start is not None:
        tags[PROCESS_START_TAG] = start
    return tags


def process_alive(tags: dict[str, str]) -> bool | None:
    """Whether the process named by `process_tags` still runs: None when unknown (not a medkg run,
    or one of another host)."""
    if PID_TAG not in tags or tags.get(HOST_TAG) != socket.gethostname():
        return None
    pid = int(tags[PID_TAG])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    if _is_zombie(pid):
        return False
    recorded, current = tags.get(PROCESS_START_TAG), _process_start(pid)
    return recorded is None or current is None or recorded == current  # else: the pid was reused


def describe_process(tags: dict[str, str]) -> str:
    if PID_TAG not in tags:
        return "not a medkg run"
    state = {True: "alive", False: "gone", None: "unknown"}[process_alive(tags)]
    return f"medkg pid {tags[PID_TAG]} on {tags.get(HOST_TAG, '?')}, {state}"


@dataclass(frozen=True)
class Claim:
    """A step's claim on a pool: holding a slot, or queued for one."""

    pool: str
    step_key: str
    holding: bool

    def __str__(self) -> str:
        return f"{self.pool}: {self.step_key} ({'held' if self.holding else 'queued'})"


def claims_of(instance: DagsterInstance, run_ids: set[str] | None = None) -> dict[str, list[Claim]]:
    """Pool claims per run id (all runs holding or queueing claims when `run_ids` is None)."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return {}
    keys = sorted(storage.get_concurrency_keys())
    found: dict[str, list[Claim]] = {}
    for pool, info in storage.get_concurrency_infos(keys).items():
        for pending in info.pending_steps:
            if run_ids is None or pending.run_id in run_ids:
                holding = pending.assigned_timestamp is not None
                found.setdefault(pending.run_id, []).append(Claim(pool, pending.step_key, holding))
    return {run_id: sorted(claims, key=str) for run_id, claims in found.items()}


@dataclass(frozen=True)
class ReleasedRun:
    run_id: str
    job_name: str | None
    status: str  # before the release
    process: str
    claims: list[Claim] = field(default_factory=list)
    marked_failed: bool = False

    def describe(self) -> str:
        kind = "dead run" if self.marked_failed else f"claims of {self.status.lower()} run"
        freed = ", ".join(map(str, self.claims)) or "no pool claims"
        action = f"marked FAILURE (was {self.status}); " if self.marked_failed else ""
        return f"freed {kind} {self.run_id} ({self.job_name or '?'}, {self.process}): {action}freed {freed}"


def release_run(instance: DagsterInstance, run_id: str, reason: str) -> ReleasedRun:
    """Mark an unfinished run FAILURE (with `reason`) and free every pool claim it holds or queues."""
    run = instance.get_run_by_id(run_id)
    claims = claims_of(instance, {run_id}).get(run_id, [])
    marked = False
    if run is not None and not run.is_finished:
        instance.report_run_failed(run, message=reason)
        marked = True
    instance.event_log_storage.free_concurrency_slots_for_run(run_id)
    return ReleasedRun(
        run_id=run_id,
        job_name=run.job_name if run else None,
        status=run.status.value if run else "DELETED",
        process=describe_process(dict(run.tags)) if run else "run deleted",
        claims=claims,
        marked_failed=marked,
    )


def dead_medkg_runs(instance: DagsterInstance) -> list[DagsterRun]:
    """Unfinished runs started by `medkg` on this host whose process is gone."""
    runs = instance.get_runs(
        filters=RunsFilter(statuses=UNFINISHED_STATUSES, tags={HOST_TAG: socket.gethostname()})
    )
    return [run for run in runs if process_alive(dict(run.tags)) is False]


def release_dead_runs(instance: DagsterInstance) -> list[ReleasedRun]:
    """Release the dead medkg runs of this host, then the claims of finished runs past the grace
    period (`run_monitoring.free_slots_after_run_end_seconds`, what the daemon would do)."""
    released = [
        release_run(
            instance,
            run.run_id,
            f"The process that executed this run ({describe_process(dict(run.tags))}) is gone; "
            "released by `medkg run`.",
        )
        for run in dead_medkg_runs(instance)
    ]
    done = {r.run_id for r in released}
    grace = (instance.run_monitoring_settings or {}).get("free_slots_after_run_end_seconds")
    storage = instance.event_log_storage
    holders = storage.get_concurrency_run_ids() if storage.supports_global_concurrency_limits else set()
    for run_id in sorted(holders - done):
        record = next(iter(instance.get_run_records(filters=RunsFilter(run_ids=[run_id]), limit=1)), None)
        if record is None:
            released.append(release_run(instance, run_id, "deleted run"))
            continue
        run = record.dagster_run
        if not run.is_finished:
            continue
        ended_long_ago = grace is not None and (record.end_time or 0) + grace < time.time()
        if process_alive(dict(run.tags)) is False or ended_long_ago:
            released.append(release_run(instance, run_id, "finished run"))
    return released
