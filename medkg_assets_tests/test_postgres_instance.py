"""The production instance's Postgres storage, against a real PostgreSQL (started by `make test`)."""

import os

import psycopg2
import pytest
import yaml
from dagster import AssetKey, DagsterInstance

from medkg_assets.partitions import register_namespaces
from medkg_assets.settings import PROJECT_ROOT, get_config
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
    (home / "dagster.yaml").write_text(yaml.safe_dump({"storage": production["storage"]}))
    with DagsterInstance.local_temp(str(home)) as instance:  # reads home/dagster.yaml
        yield instance


def test_materialisation_is_recorded_in_postgres(postgres_instance, config_dir):
    instance = postgres_instance
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    register_namespaces(instance, get_config().namespaces)
    result = ingest(instance, "tiny")
    assert metadata(result, "chunks")["chunks"] > 0
    run = instance.get_run_by_id(result.run_id)
    assert run is not None and run.is_success
    assert instance.get_latest_materialization_event(AssetKey("chunks")) is not None
    assert "tiny" in instance.get_dynamic_partitions("namespace")
