"""A real Dagster run of the test process that holds a slot of the `gpu` pool until told to stop,
and `defs` for a `dagster-daemon` over this module."""

import threading
import time
import uuid
from dataclasses import dataclass

from dagster import DagsterInstance, Definitions, OpExecutionContext, job, op

from medkg_assets.topology import GPU_POOL

RELEASES: dict[str, threading.Event] = {}


@op(pool=GPU_POOL)
def hold_gpu(context: OpExecutionContext) -> None:
    RELEASES[context.run_id].wait(timeout=300)


@job
def gpu_holder_job():
    hold_gpu()


defs = Definitions(jobs=[gpu_holder_job])


@dataclass
class Holder:
    run_id: str
    thread: threading.Thread

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)


def hold_gpu_pool(instance: DagsterInstance, release: threading.Event, tags=None, timeout_s=60) -> Holder:
    """Start `gpu_holder_job` in a thread (run tagged `tags`) and return once it holds the slot."""
    run_id = str(uuid.uuid4())
    RELEASES[run_id] = release
    thread = threading.Thread(
        target=gpu_holder_job.execute_in_process,
        kwargs={"instance": instance, "run_id": run_id, "tags": tags or {}},
        daemon=True,
    )
    thread.start()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        claimed = instance.event_log_storage.get_concurrency_info(GPU_POOL).claimed_slots
        if any(slot.run_id == run_id for slot in claimed):
            return Holder(run_id, thread)
        time.sleep(0.1)
    release.set()
    raise AssertionError(f"the holder run {run_id} did not claim the {GPU_POOL} pool in {timeout_s}s")
