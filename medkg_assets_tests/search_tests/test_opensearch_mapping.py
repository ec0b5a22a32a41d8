"""The OpenSearch template is golden: any change to it must be deliberate."""

import json
from pathlib import Path

from medkg_assets.search.opensearch_mapping import (
    build_index_template,
    chunk_document,
    feature_name,
    index_name,
    read_alias,
)
from medkg_assets_tests.conftest import current_settings

GOLDEN = Path(__file__).parent / "golden" / "opensearch_template_minilm_hnsw_cpu.json"


def test_template_matches_the_golden_file():
    profile = current_settings().profiles.get("minilm_hnsw_cpu")
    assert build_index_template("medquad_sample", profile) == json.loads(GOLDEN.read_text())


def test_versioned_index_name_and_alias():
    profile = current_settings().profiles.get("qwen3_vllm")
    name = index_name("single_vector.qwen3.4096.v1", profile)
    assert name == f"single_vector.qwen3.4096.v1-qwen3_vllm-{profile.fingerprint[:8]}"
    assert read_alias("Medquad_Sample") == "medquad_sample-read"


def test_knn_field_follows_the_profile_dims():
    template = build_index_template("ns", current_settings().profiles.get("qwen3_vllm"))
    knn = template["template"]["mappings"]["properties"]["dense_vector"]
    assert knn["dimension"] == 4096 and knn["method"]["parameters"] == {"m": 48, "ef_construction": 400}


def test_feature_names_escape_dots_reversibly():
    assert feature_name("u.s.") == "u%2Es%2E" and feature_name("50%") == "50%25"
    doc = chunk_document(
        {"chunk_id": "c", "doc_id": "d", "tenant_id": "t", "namespace": "n", "title": "", "text": "x"},
        current_settings().profiles.get("minilm_cpu"),
        {"a.b": 1.5},
        None,
    )
    assert doc["splade_terms"] == {"a%2Eb": 1.5} and "dense_vector" not in doc
