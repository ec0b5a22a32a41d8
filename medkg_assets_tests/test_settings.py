"""The runbook's profile swap rules, as a full matrix over environments and flags."""

import pytest

from medkg_assets.config import ConfigError
from medkg_assets.config.profiles import UnknownProfileError
from medkg_assets.settings import ProfileSwapError, Settings, parse_flag

# Baselines: development/test → minilm_cpu, staging/production → qwen3_vllm.
BASELINE = {
    "development": "minilm_cpu",
    "test": "minilm_cpu",
    "staging": "qwen3_vllm",
    "production": "qwen3_vllm",
}


def load(env: str, **variables: str) -> Settings:
    return Settings({"MEDKG_ENV": env, **variables})


@pytest.mark.parametrize("env", list(BASELINE))
def test_no_override_runs_the_baseline(env):
    config = load(env)
    assert config.profile.name == BASELINE[env]
    assert config.resolution.reason == "baseline"


@pytest.mark.parametrize("env", ["development", "dev", "test"])
def test_override_in_dev_or_test_is_allowed(env):
    assert load(env, EMBEDDINGS_PROFILE="bge_m3").profile.name == "bge_m3"


@pytest.mark.parametrize("env", ["staging", "production"])
def test_override_outside_dev_fails_without_swappable_flag(env):
    with pytest.raises(ProfileSwapError) as error:
        load(env, EMBEDDINGS_PROFILE="bge_m3")
    assert "EMBEDDING_PROFILE_SWAPPABLE=true" in str(error.value)
    assert "EMBEDDING_PROFILE_EXPERIMENT=bge_m3" in str(error.value)


@pytest.mark.parametrize("env", ["staging", "production"])
def test_override_equal_to_baseline_is_no_conflict(env):
    assert load(env, EMBEDDINGS_PROFILE=BASELINE[env]).profile.name == BASELINE[env]


@pytest.mark.parametrize("env", list(BASELINE))
def test_swappable_flag_allows_override(env):
    config = load(env, EMBEDDINGS_PROFILE="bge_m3", EMBEDDING_PROFILE_SWAPPABLE="true")
    assert config.profile.name == "bge_m3"
    assert config.telemetry_labels["embedding_profile_swappable"] == "true"


@pytest.mark.parametrize("env", list(BASELINE))
def test_matching_experiment_allows_override(env):
    config = load(env, EMBEDDINGS_PROFILE="bge_m3", EMBEDDING_PROFILE_EXPERIMENT="bge_m3")
    assert config.profile.name == "bge_m3"
    assert config.telemetry_labels["embedding_profile_experiment"] == "bge_m3"


@pytest.mark.parametrize("env", ["staging", "production"])
def test_mismatched_experiment_fails_outside_dev(env):
    with pytest.raises(ProfileSwapError, match="does not match"):
        load(env, EMBEDDINGS_PROFILE="bge_m3", EMBEDDING_PROFILE_EXPERIMENT="jina_v3")


@pytest.mark.parametrize("env", ["development", "test"])
def test_mismatched_experiment_is_allowed_in_dev(env):
    config = load(env, EMBEDDINGS_PROFILE="bge_m3", EMBEDDING_PROFILE_EXPERIMENT="jina_v3")
    assert config.profile.name == "bge_m3"


@pytest.mark.parametrize("env", list(BASELINE))
def test_unknown_profile_lists_known_profiles(env):
    with pytest.raises(UnknownProfileError) as error:
        load(env, EMBEDDINGS_PROFILE="nope", EMBEDDING_PROFILE_SWAPPABLE="true")
    assert "bge_m3" in str(error.value) and "minilm_cpu" in str(error.value)


def test_unknown_experiment_profile_is_an_error():
    with pytest.raises(UnknownProfileError):
        load("production", EMBEDDING_PROFILE_EXPERIMENT="nope")


def test_seed_swap_example_jina_to_bge_needs_the_flag_in_production(tmp_path):
    config = load("production", EMBEDDINGS_PROFILE="jina_v3", EMBEDDING_PROFILE_SWAPPABLE="true")
    assert config.profile.name == "jina_v3"
    config = load("production", EMBEDDINGS_PROFILE="bge_m3", EMBEDDING_PROFILE_SWAPPABLE="true")
    assert (
        config.profile.fingerprint
        != load(
            "production", EMBEDDINGS_PROFILE="jina_v3", EMBEDDING_PROFILE_SWAPPABLE="true"
        ).profile.fingerprint
    )


def test_telemetry_labels_are_complete():
    labels = load("production").telemetry_labels
    assert labels == {
        "embedding_namespace_mode": "multi",
        "embedding_strict_mode": "true",
        "embedding_profile_swappable": "false",
        "embedding_profile_experiment": "none",
    }


def test_banner_names_profile_and_labels():
    banner = load("development").banner()
    assert "profile=minilm_cpu" in banner and "embedding_strict_mode=false" in banner


def test_unknown_environment_is_an_error():
    with pytest.raises(ConfigError, match="MEDKG_ENV='qa'"):
        load("qa")


def test_non_boolean_flag_is_an_error():
    with pytest.raises(ConfigError, match="EMBEDDING_PROFILE_SWAPPABLE"):
        parse_flag({"EMBEDDING_PROFILE_SWAPPABLE": "maybe"}, "EMBEDDING_PROFILE_SWAPPABLE", False)


def test_start_up_banner_is_logged_once(caplog):
    import logging

    from medkg_assets.settings import load_settings
    from medkg_assets_tests.conftest import current_settings

    with caplog.at_level(logging.INFO, logger="medkg_assets"):
        load_settings()  # the edge: builds and logs the banner
        current_settings()  # any later settings: built again, nothing logged
    banners = [r.message for r in caplog.records if "medkg-assets: environment=" in r.message]
    assert len(banners) == 1 and "embedding_profile_swappable=false" in banners[0]


def project_with_badly_named_namespace(tmp_path):
    import shutil

    from medkg_assets.settings import PROJECT_ROOT

    config_dir = tmp_path / "config"
    shutil.copytree(PROJECT_ROOT / "config", config_dir)
    bad = config_dir / "namespaces" / "bad name.yaml"
    shutil.copy(config_dir / "namespaces" / "medquad_sample.yaml", bad)
    return config_dir, bad


def test_badly_named_namespace_file_leaves_the_others_usable(tmp_path):
    config_dir, bad = project_with_badly_named_namespace(tmp_path)
    config = load("development", MEDKG_CONFIG_DIR=str(config_dir))
    assert config.namespace("medquad_sample").name == "medquad_sample"
    assert "bad name" not in config.namespaces
    assert list(config.invalid_namespace_files) == [bad]
    with pytest.raises(ConfigError) as error:
        config.namespace("bad name")
    assert str(bad) in str(error.value) and "rename" in str(error.value)
    assert str(bad) in config.banner()


def test_badly_named_namespace_file_is_warned_about_at_start_up(tmp_path, monkeypatch, caplog):
    import logging

    from medkg_assets.settings import load_settings

    config_dir, bad = project_with_badly_named_namespace(tmp_path)
    monkeypatch.setenv("MEDKG_CONFIG_DIR", str(config_dir))
    with caplog.at_level(logging.INFO, logger="medkg_assets"):
        load_settings()
    warned = [r.message for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and str(bad) in warned[0] and "rename" in warned[0]
