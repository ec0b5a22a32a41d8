"""`medkg run`'s execution of one job (`cli._execute_watched`) on a job whose second step needs the
`gpu` pool. The first step waits for the test to take the pool (files in $POOL_WAIT_DIR), so the
run then waits for the slot inside Dagster's in-process executor, past `medkg run`'s own check."""

import os
import sys
import time
from pathlib import Path

from dagster import DagsterInstance, job, op

from medkg_assets import cli
from medkg_assets.topology import GPU_POOL


@op
def before_gpu() -> int:
    signals = Path(os.environ["POOL_WAIT_DIR"])
    (signals / "ready").touch()
    deadline = time.monotonic() + 60
    while not (signals / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    return 1


@op(pool=GPU_POOL)
def on_gpu(_ready: int) -> None:
    pass


@job
def pool_wait_job():
    on_gpu(before_gpu())


if __name__ == "__main__":
    result, stopped_by = cli._execute_watched(DagsterInstance.get(), pool_wait_job, None)
    sys.exit(stopped_by if stopped_by is not None else (0 if result.success else 1))
