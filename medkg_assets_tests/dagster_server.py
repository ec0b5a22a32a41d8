"""Run `dagster dev` (webserver + daemon) on a tiny project, and talk to it over GraphQL."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import requests
import yaml

from medkg_assets.settings import PROJECT_ROOT
from medkg_assets_tests.conftest import make_tiny_project
from medkg_assets_tests.processes import free_port, start_until_ready, stop_process_group


class DagsterServer:
    def __init__(self, url: str, data_dir: Path, log: Path):
        self.url, self.data_dir, self.log = url, data_dir, log

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        response = requests.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=60
        )
        response.raise_for_status()
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]


def start_dagster_dev(
    root: Path, namespaces=("tiny", "tiny2"), partitions_per_run: int = 1, startup_timeout_s: int = 180
):
    """Yield a DagsterServer for a fresh instance over a tiny project; stop the process group after.

    `partitions_per_run` sets the environment's `automation.backfill_partitions_per_run`.
    """
    config_dir = make_tiny_project(root / "project", namespaces)
    environment = config_dir / "test.yaml"
    settings = yaml.safe_load(environment.read_text())
    settings.setdefault("automation", {})["backfill_partitions_per_run"] = partitions_per_run
    environment.write_text(yaml.safe_dump(settings))
    home = root / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    port = free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "MEDKG_CONFIG_DIR": str(config_dir),
        "MEDKG_DATA_DIR": str(root / "data"),
        "MEDKG_ENV": "test",
        "HF_HUB_OFFLINE": "1",
    }
    # What an operator does before the first `dagster dev` (make dev): the namespaces become partitions.
    subprocess.run(
        [sys.executable, "-m", "medkg_assets.cli", "register-namespaces"], env=env, check=True, timeout=120
    )
    log_path = root / "dagster_dev.log"
    server = DagsterServer(f"http://127.0.0.1:{port}", root / "data", log_path)

    def code_location_loaded() -> bool:
        try:
            data = server.graphql(
                "{ workspaceOrError { __typename ... on Workspace { locationEntries "
                "{ locationOrLoadError { __typename } } } } }"
            )
        except (requests.RequestException, AssertionError):
            return False
        entries = data["workspaceOrError"]["locationEntries"]
        return bool(entries) and entries[0]["locationOrLoadError"]["__typename"] == "RepositoryLocation"

    command = [sys.executable, "-m", "dagster", "dev", "-w", str(PROJECT_ROOT / "workspace.yaml")]
    process = start_until_ready(
        [*command, "-h", "127.0.0.1", "-p", str(port)],
        log_path,
        code_location_loaded,
        startup_timeout_s,
        poll_s=2,
        cwd=PROJECT_ROOT,
        env=env,
    )
    try:
        yield server
    finally:
        stop_process_group(process)
