"""Profile manifest: validation errors name file and key; fingerprints follow vector fields."""

from pathlib import Path

import pytest
import yaml

from medkg_assets.config import ConfigError, load_profiles
from medkg_assets.settings import PROJECT_ROOT

MANIFEST = PROJECT_ROOT / "config" / "embedding_profiles.yaml"


def write_manifest(tmp_path: Path, mutate) -> Path:
    data = yaml.safe_load(MANIFEST.read_text())
    mutate(data["profiles"])
    path = tmp_path / "embedding_profiles.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_shipped_manifest_has_the_required_profiles():
    names = load_profiles(MANIFEST).names
    assert {"minilm_cpu", "qwen3_vllm", "bge_m3", "jina_v3"} <= set(names)


def test_qwen3_profile_is_the_gpu_vllm_production_profile():
    qwen = load_profiles(MANIFEST).get("qwen3_vllm")
    assert (qwen.dense.backend, qwen.dense.dims, qwen.require_gpu) == ("vllm", 4096, True)
    assert qwen.sparse.model == "naver/splade-v3" and qwen.index.type == "hnsw"


def test_fingerprint_is_stable_across_loads():
    assert (
        load_profiles(MANIFEST).get("minilm_cpu").fingerprint
        == load_profiles(MANIFEST).get("minilm_cpu").fingerprint
    )


def test_fingerprint_changes_with_a_vector_field(tmp_path):
    before = load_profiles(MANIFEST).get("minilm_cpu").fingerprint
    path = write_manifest(tmp_path, lambda p: p["minilm_cpu"]["sparse"].update(top_k_terms=100))
    assert load_profiles(path).get("minilm_cpu").fingerprint != before


def test_fingerprint_ignores_batch_size_and_index(tmp_path):
    before = load_profiles(MANIFEST).get("minilm_cpu")

    def mutate(profiles):
        profiles["minilm_cpu"]["dense"]["batch_size"] = 8
        profiles["minilm_cpu"]["index"] = {"type": "hnsw", "m": 16}

    after = load_profiles(write_manifest(tmp_path, mutate)).get("minilm_cpu")
    assert after.fingerprint == before.fingerprint
    assert after.index_fingerprint != before.index_fingerprint


def test_invalid_field_names_file_and_key(tmp_path):
    path = write_manifest(tmp_path, lambda p: p["minilm_cpu"]["dense"].update(dims=-1))
    with pytest.raises(ConfigError) as error:
        load_profiles(path)
    assert str(path) in str(error.value) and "profiles.minilm_cpu.dense.dims" in str(error.value)


def test_unknown_index_type_is_refused(tmp_path):
    path = write_manifest(tmp_path, lambda p: p["minilm_cpu"].update(index={"type": "lsh"}))
    with pytest.raises(ConfigError, match="profiles.minilm_cpu.index"):
        load_profiles(path)


def test_vllm_backend_needs_a_served_model_name(tmp_path):
    path = write_manifest(tmp_path, lambda p: p["qwen3_vllm"]["dense"].pop("served_model_name"))
    with pytest.raises(ConfigError, match="served_model_name"):
        load_profiles(path)


def test_malformed_yaml_names_the_file(tmp_path):
    path = tmp_path / "embedding_profiles.yaml"
    path.write_text("profiles: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_profiles(path)
