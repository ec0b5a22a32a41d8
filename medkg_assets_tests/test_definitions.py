"""The code location loads, validates, and partitions match the configuration."""

import logging
import os
import subprocess
import sys
import textwrap

from dagster import Definitions, MultiPartitionsDefinition
from dagster.components.definitions import LazyDefinitions

from medkg_assets.definitions import build_definitions
from medkg_assets.orchestration.partitions import (
    build_partitions,
    register_namespaces,
    split_partition_key,
)
from medkg_assets.settings import PROJECT_ROOT
from medkg_assets_tests.conftest import current_settings


def test_definitions_are_loadable():
    Definitions.validate_loadable(build_definitions(current_settings()))


def test_dagster_cli_validates_the_code_location():
    result = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-m", "medkg_assets.definitions"],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_profile_partitions_are_the_manifest_profiles():
    partitions = build_partitions(current_settings())
    assert partitions.profile.get_partition_keys() == current_settings().profiles.names
    assert isinstance(partitions.namespace_profile, MultiPartitionsDefinition)


def test_namespace_registration_is_idempotent(instance):
    assert set(instance.get_dynamic_partitions("namespace")) == set(current_settings().namespaces)
    assert register_namespaces(instance, current_settings().namespaces) == []


def test_partition_key_string_splits_into_dimensions():
    assert split_partition_key("medquad_sample|minilm_cpu") == ("medquad_sample", "minilm_cpu")


def test_defs_is_a_lazy_definitions_entry_point_that_validates(data_dir):
    from medkg_assets.definitions import defs

    assert isinstance(defs, LazyDefinitions)
    logger = logging.getLogger("medkg_assets")
    handlers, level = list(logger.handlers), logger.level
    try:  # `defs()` is an edge: it configures the package logger, which other tests must not inherit
        loaded = defs()
    finally:
        for handler in [h for h in logger.handlers if h not in handlers]:
            logger.removeHandler(handler)
        logger.setLevel(level)
    assert isinstance(loaded, Definitions)
    Definitions.validate_loadable(loaded)


IMPORT_WITHOUT_SIDE_EFFECTS = textwrap.dedent(
    """
    import dagster

    import medkg_assets.settings


    def refuse(what):
        def refused(*args, **kwargs):
            raise AssertionError(f"importing medkg_assets.definitions called {what}")

        return refused


    medkg_assets.settings.Settings.__init__ = refuse("Settings()")
    dagster.DagsterInstance.get = staticmethod(refuse("DagsterInstance.get()"))

    import medkg_assets.definitions  # noqa: E402, F401

    print("ok")
    """
)


def _tree(path):
    """Every path under `path` with its size and mtime (empty when `path` does not exist)."""
    if not path.exists():
        return None
    entries = {}
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            entry = os.path.join(root, name)
            stat = os.lstat(entry)
            entries[os.path.relpath(entry, path)] = (stat.st_size, stat.st_mtime_ns)
    return entries


def test_importing_the_code_location_reads_no_config_touches_no_instance_and_writes_nothing(tmp_path):
    cwd = tmp_path / "readonly"
    cwd.mkdir()
    cwd.chmod(0o500)
    env = {
        name: value
        for name, value in os.environ.items()
        if name != "DAGSTER_HOME" and not name.startswith(("MEDKG_", "EMBEDD"))
    }
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    watched = [PROJECT_ROOT / ".dagster_home", PROJECT_ROOT / ".medkg"]
    before = {path: _tree(path) for path in watched}
    try:
        done = subprocess.run(
            [sys.executable, "-c", IMPORT_WITHOUT_SIDE_EFFECTS],
            capture_output=True,
            text=True,
            cwd=cwd,
            env=env,
            timeout=120,
        )
        listing = sorted(os.listdir(cwd))
    finally:
        cwd.chmod(0o700)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == "ok", done.stdout + done.stderr
    assert listing == []
    assert not (cwd / ".dagster_home").exists() and not (cwd / ".medkg").exists()
    assert {path: _tree(path) for path in watched} == before
