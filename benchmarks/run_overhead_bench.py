"""P6 (part): fixed overhead of one partition run with trivial data, SQLite vs PostgreSQL storage.

Runs `ingest_job` for N tiny namespaces (3 short documents each) through `execute_job` with the
multiprocess executor, the way a launched run executes, once on a SQLite instance and once on the
production Postgres storage block (deploy/dagster/dagster.yaml, PostgreSQL from
scripts/start_test_services.sh). Prints per-run wall time; the work itself is ≈ 0.3 s per run.

Usage: python benchmarks/run_overhead_bench.py [--runs 4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import common  # noqa: F401 - sets the offline environment
import yaml
from common import print_table


def ingest_job():
    from medkg_assets.definitions import defs

    return defs.resolve_job_def("ingest_job")


def timed_runs(instance, namespaces) -> list[float]:
    from dagster import execute_job, reconstructable

    from medkg_assets.partitions import register_namespaces
    from medkg_assets.settings import get_config

    register_namespaces(instance, get_config().namespaces)
    seconds = []
    for name in namespaces:
        started = time.perf_counter()
        with execute_job(
            reconstructable(ingest_job), instance=instance, tags={"dagster/partition": name}
        ) as result:
            assert result.success, name
        seconds.append(time.perf_counter() - started)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=4)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="medkg-p6-"))
    from medkg_assets_tests.conftest import make_tiny_project

    names = [f"tiny{i}" for i in range(args.runs)]
    os.environ["MEDKG_CONFIG_DIR"] = str(make_tiny_project(root / "project", names))
    os.environ["MEDKG_DATA_DIR"] = str(root / "data")
    from dagster import DagsterInstance

    from medkg_assets.settings import PROJECT_ROOT, reset_config

    reset_config()
    rows = []
    (root / "sqlite").mkdir()
    with DagsterInstance.local_temp(str(root / "sqlite")) as instance:
        sqlite = timed_runs(instance, names)
    rows.append(
        ["SQLite (local default)", args.runs, f"{statistics.median(sqlite):.2f}", f"{sum(sqlite):.1f}"]
    )
    os.environ.update(
        {
            "DAGSTER_PG_HOST": "localhost",
            "DAGSTER_PG_USERNAME": "medkg",
            "DAGSTER_PG_PASSWORD": "medkg",
            "DAGSTER_PG_DB": "medkg_test",
        }
    )
    production = yaml.safe_load((PROJECT_ROOT / "deploy" / "dagster" / "dagster.yaml").read_text())
    (root / "postgres").mkdir()
    (root / "postgres" / "dagster.yaml").write_text(yaml.safe_dump({"storage": production["storage"]}))
    with DagsterInstance.local_temp(str(root / "postgres")) as instance:
        postgres = timed_runs(instance, names)
    rows.append(
        [
            "PostgreSQL 15 (production storage block)",
            args.runs,
            f"{statistics.median(postgres):.2f}",
            f"{sum(postgres):.1f}",
        ]
    )
    print_table(
        "One partition run of ingest_job with trivial data (multiprocess executor, 2 steps)",
        ["instance storage", "runs", "median s per run", "total s"],
        rows,
    )


if __name__ == "__main__":
    main()
