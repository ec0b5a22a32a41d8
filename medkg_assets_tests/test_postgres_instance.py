"""The production instance's Postgres storage, against a real PostgreSQL (started by `make test`)."""

import os
import subprocess
import sys
import uuid

import psycopg2
import pytest
import yaml
from dagster import AssetKey, DagsterInstance, DagsterRunStatus

from medkg_assets.automation.stale_runs import Claim, process_tags, release_dead_runs
from medkg_assets.orchestration.partitions import register_namespaces
from medkg_assets.settings import PROJECT_ROOT
from medkg_assets_tests.conftest import current_settings
from medkg_assets_tests.pipeline import ingest, metadata
from medkg_assets_tests.processes import service_missing

PG_ENV = {
    "DAGSTER_PG_HOST": os.environ.get("MEDKG_TEST_PG_HOST", "localhost"),
    "DAGSTER_PG_USERNAME": os.environ.get("MEDKG_TEST_PG_USER", "medkg"),
    "DAGSTER_PG_PASSWORD": os.environ.get("MEDKG_TEST_PG_PASSWORD", "medkg"),
    "DAGSTER_PG_DB": os.environ.get("MEDKG_TEST_PG_DB", "medkg_test"),
}


@pytest.fixture(scope="module")
def postgres():
    try:
        psycopg2.connect(
            host=PG_ENV["DAGSTER_PG_HOST"],
            user=PG_ENV["DAGSTER_PG_USERNAME"],
            password=PG_ENV["DAGSTER_PG_PASSWORD"],
            dbname=PG_ENV["DAGSTER_PG_DB"],
            connect_timeout=5,
        ).close()
    except psycopg2.OperationalError as error:
        service_missing(
            f"PostgreSQL not reachable ({error}); `make test` starts it (scripts/start_test_services.sh)"
        )
    return PG_ENV


@pytest.fixture
def postgres_instance(postgres, tmp_path, monkeypatch, data_dir):
    """An instance whose storage block is the production one from deploy/dagster/dagster.yaml."""
    for key, value in postgres.items():
        monkeypatch.setenv(key, value)
    production = yaml.safe_load((PROJECT_ROOT / "deploy" / "dagster" / "dagster.yaml").read_text())
    home = tmp_path / "dagster_home"
    home.mkdir()
    # storage, pools and run monitoring as in production (the run launcher needs a cluster)
    blocks = {key: production[key] for key in ("storage", "concurrency", "run_monitoring")}
    (home / "dagster.yaml").write_text(yaml.safe_dump(blocks))
    with DagsterInstance.local_temp(str(home)) as instance:  # reads home/dagster.yaml
        yield instance


def test_materialisation_is_recorded_in_postgres(postgres_instance, config_dir):
    instance = postgres_instance
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    register_namespaces(instance, current_settings().namespaces)
    result = ingest(instance, "tiny")
    assert metadata(result, "chunks")["chunks"] > 0
    run = instance.get_run_by_id(result.run_id)
    assert run is not None and run.is_success
    assert instance.get_latest_materialization_event(AssetKey("chunks")) is not None
    assert "tiny" in instance.get_dynamic_partitions("namespace")


def test_a_dead_medkg_runs_pool_slot_is_freed_and_handed_on_in_postgres(postgres_instance):
    """What `medkg run` does before it starts, on the production storage and pool settings."""
    from medkg_assets_tests.automation_tests.gpu_holder import gpu_holder_job

    instance = postgres_instance
    assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] == 300
    storage = instance.event_log_storage
    pool = f"gpu-test-{uuid.uuid4().hex[:8]}"  # the database outlives the test: a pool of its own
    assert storage.initialize_concurrency_limit_to_default(pool)
    assert storage.get_concurrency_info(pool).limit == 1
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = instance.create_run_for_job(
        job_def=gpu_holder_job, tags=process_tags(gone.pid), status=DagsterRunStatus.STARTED
    )
    waiting = instance.create_run_for_job(
        job_def=gpu_holder_job, tags=process_tags(), status=DagsterRunStatus.STARTED
    )
    try:
        assert storage.claim_concurrency_slot(pool, dead.run_id, "hold_gpu").is_claimed
        assert not storage.claim_concurrency_slot(pool, waiting.run_id, "hold_gpu").is_claimed
        released = [r for r in release_dead_runs(instance) if r.run_id == dead.run_id]
        assert len(released) == 1 and released[0].claims == [Claim(pool, "hold_gpu", True)]
        assert instance.get_run_by_id(dead.run_id).status == DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(waiting.run_id).status == DagsterRunStatus.STARTED
        assert storage.claim_concurrency_slot(pool, waiting.run_id, "hold_gpu").is_claimed
    finally:
        storage.free_concurrency_slots_for_run(waiting.run_id)
        storage.delete_concurrency_limit(pool)
