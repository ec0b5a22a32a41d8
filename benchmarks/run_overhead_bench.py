"""P6 (part): fixed overhead of a partition run, and one grouped run of N partitions against N single
runs, on SQLite and on PostgreSQL storage.

Runs `ingest_job` through `execute_job` with the multiprocess executor, the way a launched run
executes, once on a SQLite instance and once on the production Postgres storage block
(deploy/dagster/dagster.yaml, PostgreSQL from scripts/start_test_services.sh):
- N single runs, one tiny namespace (3 short documents) each (`dagster/partition` tag);
- one run over N other namespaces with the same documents, tagged with a partition range
  (`dagster/asset_partition_range_start`/`_end`), which is the run a backfill launches when
  `backfill_partitions_per_run >= N`. The work itself is ≈ 0.3 s per partition.

Namespace names carry a fresh suffix each time: the Postgres database outlives the script, and a
range is taken in the order partitions were added, so each range must be a block added at once.

Usage: python benchmarks/run_overhead_bench.py [--runs 4]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import tempfile
import time
from pathlib import Path

import common  # noqa: F401 - sets the offline environment
import yaml
from common import print_table

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def ingest_job():
    """Module level, so `reconstructable` rebuilds it in executor subprocesses from the env."""
    from medkg_assets.definitions import build_definitions
    from medkg_assets.settings import Settings

    return build_definitions(Settings()).resolve_job_def("ingest_job")


def timed_run(instance, tags: dict[str, str], expected: list[str]) -> float:
    """Wall time of one `ingest_job` run; fails unless it materialised exactly `expected` chunks."""
    from dagster import AssetKey, execute_job, reconstructable

    started = time.perf_counter()
    with execute_job(reconstructable(ingest_job), instance=instance, tags=tags) as result:
        seconds = time.perf_counter() - started
        assert result.success, tags
        built = {
            event.partition
            for event in result.get_asset_materialization_events()
            if event.asset_key == AssetKey("chunks")
        }
    assert built == set(expected), (tags, sorted(built))
    assert set(expected) <= set(instance.get_materialized_partitions(AssetKey("chunks")))
    return seconds


def measure(instance, singles: list[str], grouped: list[str]) -> tuple[list[float], float]:
    """Seconds of each single-partition run, then of one run over every `grouped` partition."""
    from medkg_assets.orchestration.partitions import NAMESPACE_DIMENSION, register_namespaces
    from medkg_assets.settings import Settings

    register_namespaces(instance, Settings().namespaces)
    order = instance.get_dynamic_partitions(NAMESPACE_DIMENSION)
    start = order.index(grouped[0])
    assert order[start : start + len(grouped)] == grouped, "grouped namespaces are not one block"
    single = [timed_run(instance, {"dagster/partition": name}, [name]) for name in singles]
    group = timed_run(instance, {RANGE_START: grouped[0], RANGE_END: grouped[-1]}, grouped)
    return single, group


def tiny_project(root: Path, runs: int) -> tuple[list[str], list[str]]:
    """Config with `runs` single namespaces and `runs` grouped twins reading the same documents."""
    from medkg_assets.samples import make_tiny_project

    suffix = secrets.token_hex(3)
    singles = [f"single-{suffix}-{i:02d}" for i in range(runs)]
    grouped = [f"grouped-{suffix}-{i:02d}" for i in range(runs)]
    config_dir = make_tiny_project(root / "project", singles)
    for single, twin in zip(singles, grouped, strict=True):
        source = config_dir / "namespaces" / f"{single}.yaml"
        (config_dir / "namespaces" / f"{twin}.yaml").write_text(source.read_text())
    os.environ["MEDKG_CONFIG_DIR"] = str(config_dir)
    return singles, grouped


def row(storage: str, single: list[float], group: float) -> list:
    """One table row: single runs' total and median, the grouped run, and their ratio."""
    total = sum(single)
    median = statistics.median(single)
    return [storage, f"{total:.1f}", f"{median:.2f}", f"{group:.1f}", f"{total / group:.2f}"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=4)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="medkg-p6-"))
    singles, grouped = tiny_project(root, args.runs)
    os.environ["MEDKG_DATA_DIR"] = str(root / "data")
    from dagster import DagsterInstance

    from medkg_assets.settings import PROJECT_ROOT

    rows = []
    (root / "sqlite").mkdir()
    with DagsterInstance.local_temp(str(root / "sqlite")) as instance:
        rows.append(row("SQLite (local default)", *measure(instance, singles, grouped)))
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
        rows.append(row("PostgreSQL 15 (production storage block)", *measure(instance, singles, grouped)))
    n = args.runs
    print_table(
        f"ingest_job over {n} tiny namespaces: {n} single-partition runs vs one grouped run "
        "(multiprocess executor, 2 steps)",
        ["storage", f"{n} single runs total s", "median s/run", f"one grouped run of {n} s", "ratio"],
        rows,
    )


if __name__ == "__main__":
    main()
