"""The Dagster CLI materialises partitions of a fresh instance once `medkg register-namespaces` has
made the configured namespaces partitions (loading the code location registers nothing)."""

import os
import shutil
import subprocess
import sys

import pytest

from medkg_assets.settings import PROJECT_ROOT

pytestmark = pytest.mark.slow


def dagster_cli(*args, env):
    return subprocess.run(
        [sys.executable, "-m", "dagster", *args, "-m", "medkg_assets.definitions"],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env=env,
        timeout=300,
    )


def test_chunks_then_dense_materialise_from_the_dagster_cli(config_dir, data_dir, tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    register = subprocess.run(
        [sys.executable, "-m", "medkg_assets.cli", "register-namespaces"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert register.returncode == 0, register.stderr[-2000:]
    assert f"registered namespace partitions in {home}: tiny" in register.stdout
    ingest = dagster_cli(
        "asset", "materialize", "--select", "source_documents,chunks", "--partition", "tiny", env=env
    )
    assert ingest.returncode == 0, ingest.stdout[-2000:] + ingest.stderr[-2000:]
    dense = dagster_cli(
        "asset",
        "materialize",
        "--select",
        "dense_embeddings,faiss_index",
        "--partition",
        "tiny|minilm_cpu",
        env=env,
    )
    output = dense.stdout + dense.stderr
    assert dense.returncode == 0, output[-3000:]
    assert "RUN_SUCCESS" in output and "dense_hash_parity" in output
    assert (data_dir / "namespaces" / "tiny" / "profiles" / "minilm_cpu" / "faiss" / "CURRENT").exists()


def test_a_graph_backed_asset_reports_the_time_of_its_op_steps():
    from medkg_assets.cli import _asset_seconds

    steps = {
        "chunks": 2.0,
        "dense_embeddings.plan": 1.0,
        "dense_embeddings.shard[shard_00000]": 5.0,
        "faiss_index": 3.0,
    }
    assert _asset_seconds(steps, "dense_embeddings") == 6.0
    assert _asset_seconds(steps, "chunks") == 2.0 and _asset_seconds(steps, "sparse_vectors") == 0.0
