"""Shared fixtures: an isolated data dir per test, the test environment, no hub access.

Tests are an edge like the CLI: each builds its settings from the (monkeypatched) environment
with `current_settings()`, and its definitions with `pipeline.definitions()`; nothing is cached
between tests, so no configuration has to be reset.
"""

import os
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("MEDKG_ENV", "test")
for _name in ("EMBEDDINGS_PROFILE", "EMBEDDING_PROFILE_SWAPPABLE", "EMBEDDING_PROFILE_EXPERIMENT"):
    os.environ.pop(_name, None)

from dagster import DagsterInstance  # noqa: E402

from medkg_assets.orchestration.partitions import register_namespaces  # noqa: E402
from medkg_assets.samples import SAMPLE_CORPUS, make_tiny_project  # noqa: E402, F401 (shared by tests)
from medkg_assets.settings import PROJECT_ROOT, Settings  # noqa: E402

# The fine-tuned reranker lives in shared/models beside the checkout (also in CI).
os.environ.setdefault("MEDKG_MODELS_DIR", str(PROJECT_ROOT.parent / "shared" / "models"))


def current_settings() -> Settings:
    """Settings from this test's environment (what `definitions.py` or the CLI would build)."""
    return Settings()


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    """A fresh MEDKG_DATA_DIR for the test."""
    path = tmp_path / "data"
    monkeypatch.setenv("MEDKG_DATA_DIR", str(path))
    return path


@pytest.fixture
def config_dir(tmp_path, monkeypatch) -> Path:
    """A copy of `config/` the test may edit, with one tiny namespace `tiny` of 3 documents."""
    target = make_tiny_project(tmp_path / "project")
    monkeypatch.setenv("MEDKG_CONFIG_DIR", str(target))
    return target


@pytest.fixture
def instance(data_dir):
    """An ephemeral Dagster instance with the configured namespaces registered."""
    with DagsterInstance.ephemeral() as dagster_instance:
        register_namespaces(dagster_instance, current_settings().namespaces)
        yield dagster_instance
