"""The code location loads, validates, and partitions match the configuration."""

import subprocess
import sys

from dagster import Definitions, MultiPartitionsDefinition

from medkg_assets.definitions import defs
from medkg_assets.partitions import (
    namespace_profile_partitions,
    profile_partitions,
    register_namespaces,
    split_partition_key,
)
from medkg_assets.settings import PROJECT_ROOT, get_config


def test_definitions_are_loadable():
    Definitions.validate_loadable(defs)


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
    assert profile_partitions.get_partition_keys() == get_config().profiles.names
    assert isinstance(namespace_profile_partitions, MultiPartitionsDefinition)


def test_namespace_registration_is_idempotent(instance):
    assert set(instance.get_dynamic_partitions("namespace")) == set(get_config().namespaces)
    assert register_namespaces(instance, get_config().namespaces) == []


def test_partition_key_string_splits_into_dimensions():
    assert split_partition_key("medquad_sample|minilm_cpu") == ("medquad_sample", "minilm_cpu")
