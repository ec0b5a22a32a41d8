"""Waiting for a pool slot without spinning, saying who holds it, and stopping on SIGINT/SIGTERM.

Dagster's in-process executor waits for a pool slot in its own loop, which `medkg run` cannot use:
the loop sleeps for `interval_to_next_pending_claim_check()`, which is never positive (`min([0, …])`
in `InstanceConcurrencyContext`), so it spins at 100% of a core; it logs "Step blocked by limit for
pool" once per 5 minutes; and the whole execution runs under `capture_interrupts()`, whose SIGINT
and SIGTERM handlers only set a flag that the in-process loop never reads (the multiprocess
executor does), so a waiting run ignores both signals.

Hence two parts:

- `wait_for_pools`: before a job that uses pools, wait in our own loop (a sleep per poll) until
  each pool has a slot free and no claim queued ahead, reporting the holders every
  `report_every_s` and raising `PoolWaitInterrupted` on SIGINT/SIGTERM. Nothing is claimed yet.
- `PoolWaitGuard`: around the execution, for a wait Dagster enters anyway (another run takes the
  slot between two GPU steps). A watcher thread hears signals through `signal.set_wakeup_fd`
  (written for every signal with a Python handler, whichever handler Dagster has installed) and
  reads the run's queued claims from the instance. While the run waits it reports the holders;
  and, once a poll, sends SIGUSR1 to the main thread, whose handler naps until the next poll (so
  Dagster's spinning loop sleeps too). On SIGINT/SIGTERM during such a wait it marks the run
  CANCELING and sends SIGUSR1 again, now raising `PoolWaitInterrupted` (a KeyboardInterrupt)
  inside Dagster's loop: Dagster then frees the run's queued claims and marks it CANCELED. A signal
  outside a pool wait is left to Dagster (it interrupts the running step), and is remembered so
  `medkg run` stops after that job.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass

from dagster import DagsterInstance, JobDefinition

from medkg_assets.automation.stale_runs import describe_process, release_dead_runs

LEGACY_POOL_TAG = "dagster/concurrency_key"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
Report = Callable[[str], None]


def _print(line: str) -> None:
    print(line, flush=True)


class PoolWaitInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived while a run waited for a pool slot."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def job_pools(job: JobDefinition) -> set[str]:
    """The pools the job's ops claim a slot of."""
    pools = set()
    for node in job.graph.nodes:
        definition = node.definition
        pool = getattr(definition, "pool", None) or (definition.tags or {}).get(LEGACY_POOL_TAG)
        if pool:
            pools.add(pool)
    return pools


@dataclass(frozen=True)
class PoolWait:
    """A pool a run cannot claim now: its limit, the steps holding it, those queued ahead."""

    pool: str
    limit: int | None
    holders: list[tuple[str, str]]  # (run id, step key)
    queued: list[tuple[str, str]]

    def describe(self, instance: DagsterInstance) -> str:
        def runs(entries: list[tuple[str, str]]) -> str:
            parts = []
            for run_id, step_key in entries:
                run = instance.get_run_by_id(run_id)
                state = f"{run.status.value}, {describe_process(dict(run.tags))}" if run else "run deleted"
                parts.append(f"run {run_id} ({step_key}, {state})")
            return "; ".join(parts)

        text = f"pool {self.pool} (limit {self.limit})"
        if self.holders:
            text += f": held by {runs(self.holders)}"
        if self.queued:
            text += f"; queued ahead: {runs(self.queued)}"
        return text


def _op_granularity(instance: DagsterInstance) -> bool:
    granularity = instance.event_log_storage.get_pool_config().pool_granularity
    return getattr(granularity, "value", granularity) != "run"


def blocked_pools(
    instance: DagsterInstance, pools: Iterable[str], run_id: str | None = None
) -> list[PoolWait]:
    """The pools in which a step of `run_id` (or of a new run) would have to wait now."""
    storage = instance.event_log_storage
    pools = sorted(set(pools))
    if not pools or not storage.supports_global_concurrency_limits or not _op_granularity(instance):
        return []
    infos = storage.get_concurrency_infos(pools)
    pending = [p for info in infos.values() for p in info.pending_steps]
    if run_id is not None and any(p.run_id == run_id and p.assigned_timestamp is not None for p in pending):
        return []  # one of its steps holds a slot: it runs (in process, one step at a time)
    waits = []
    for pool, info in infos.items():
        if info.limit is None:
            continue
        others = [p for p in info.pending_steps if p.run_id != run_id]
        holders = [(p.run_id, p.step_key) for p in others if p.assigned_timestamp is not None]
        queued = [(p.run_id, p.step_key) for p in others if p.assigned_timestamp is None]
        if run_id is not None:
            # a started run waits when one of its steps is queued without a slot
            if not any(p.run_id == run_id for p in info.pending_steps):
                continue
        elif len(holders) < info.limit and not queued:
            continue
        waits.append(PoolWait(pool, info.limit, holders, queued))
    return waits


@contextmanager
def _signals_raise():
    """SIGINT/SIGTERM raise PoolWaitInterrupted in the main thread, for our own waiting loop."""

    def handler(signum, _frame):
        raise PoolWaitInterrupted(signum)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def wait_for_pools(
    instance: DagsterInstance,
    pools: Iterable[str],
    report: Report = _print,
    report_every_s: float = 30.0,
    poll_s: float = 1.0,
) -> float:
    """Block (sleeping) until every pool in `pools` has a slot for a new run; return the seconds
    waited. Dead medkg runs that hold a slot meanwhile are released. Raises PoolWaitInterrupted."""
    started = time.monotonic()
    last_report = None
    with _signals_raise():
        while waits := blocked_pools(instance, pools):
            for released in release_dead_runs(instance):
                report(released.describe())
            now = time.monotonic()
            if last_report is None or now - last_report >= report_every_s:
                waited = f" ({now - started:.0f}s so far)" if last_report is not None else ""
                for wait in waits:
                    report(f"waiting for {wait.describe(instance)}{waited}")
                last_report = now
            time.sleep(poll_s)
    return time.monotonic() - started


class PoolWaitGuard:
    """Watches one run executed in this process's main thread (see the module docstring).

    After the block: `signum` is the SIGINT/SIGTERM received meanwhile (or None) and `interrupted`
    tells whether it stopped a pool wait.
    """

    def __init__(
        self,
        instance: DagsterInstance,
        run_id: str,
        pools: Iterable[str],
        report: Report = _print,
        report_every_s: float = 30.0,
        poll_s: float = 1.0,
        exit_after_s: float = 15.0,
    ):
        self.instance, self.run_id, self.pools = instance, run_id, sorted(set(pools))
        self.report, self.report_every_s, self.poll_s = report, report_every_s, poll_s
        self.exit_after_s = exit_after_s
        self.signum: int | None = None
        self.interrupted = False
        self._stop = threading.Event()
        self._wake = threading.Event()  # ends a nap of the main thread early
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PoolWaitGuard:
        if threading.current_thread() is not threading.main_thread():
            return self  # signal handlers and the wakeup fd belong to the main thread
        self._main = threading.main_thread().ident
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)
        self._previous_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        self._previous_usr1 = signal.signal(signal.SIGUSR1, self._in_main)
        self._thread = threading.Thread(target=self._watch, name="medkg-pool-wait", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> bool:
        if self._thread is None:
            return False
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)
        signal.set_wakeup_fd(self._previous_fd)
        signal.signal(signal.SIGUSR1, self._previous_usr1)
        self._reader.close()
        self._writer.close()
        return False

    def _in_main(self, _signum, _frame) -> None:
        """SIGUSR1 from the watcher: raise to stop the wait, else nap (Dagster's wait spins)."""
        if self.interrupted and self.signum is not None:
            raise PoolWaitInterrupted(self.signum)
        self._wake.wait(self.poll_s)
        self._wake.clear()

    def _signals(self) -> list[int]:
        try:
            data = self._reader.recv(64)
        except BlockingIOError:
            return []
        return [b for b in data if b in STOP_SIGNALS]

    def _watch(self) -> None:
        last_report = None
        interrupted_at = None
        next_check = time.monotonic() + self.poll_s
        while not self._stop.is_set():
            timeout = max(0.0, next_check - time.monotonic())
            readable, _, _ = select.select([self._reader], [], [], timeout)
            stop_signals = self._signals() if readable else []
            if self._stop.is_set():
                return
            if not stop_signals and time.monotonic() < next_check:
                continue  # e.g. the byte of our own SIGUSR1
            for signum in stop_signals:
                self.signum = self.signum or signum
            next_check = time.monotonic() + self.poll_s
            try:
                waits = blocked_pools(self.instance, self.pools, self.run_id)
            except Exception as error:  # the instance must not kill the watcher
                self.report(f"pool wait check failed: {error}")
                waits = []
            now = time.monotonic()
            if waits and (last_report is None or now - last_report >= self.report_every_s):
                for wait in waits:
                    self.report(f"run {self.run_id} waiting for {wait.describe(self.instance)}")
                last_report = now
            if self.signum is not None and waits and not self.interrupted:
                self._interrupt(waits)
                interrupted_at = now
            elif waits and not self.interrupted:
                signal.pthread_kill(self._main, signal.SIGUSR1)  # nap until the next check
            if interrupted_at is not None and now - interrupted_at > self.exit_after_s:
                self._force_exit()

    def _interrupt(self, waits: list[PoolWait]) -> None:
        name = signal.Signals(self.signum).name
        pools = ", ".join(w.pool for w in waits)
        self.report(f"{name} while run {self.run_id} waited for pool {pools}: canceling it")
        run = self.instance.get_run_by_id(self.run_id)
        if run is not None and not run.is_finished:
            self.instance.report_run_canceling(run, message=f"{name} while waiting for pool {pools}")
        self.interrupted = True
        self._wake.set()
        signal.pthread_kill(self._main, signal.SIGUSR1)

    def _force_exit(self) -> None:
        """The main thread did not unwind: free what the run holds and leave."""
        self.instance.event_log_storage.free_concurrency_slots_for_run(self.run_id)
        run = self.instance.get_run_by_id(self.run_id)
        if run is not None and not run.is_finished:
            self.instance.report_run_failed(run, message="interrupted while waiting for a pool slot")
        self.report(f"run {self.run_id} did not stop within {self.exit_after_s:.0f}s; its claims are freed")
        os._exit(128 + (self.signum or signal.SIGTERM))
