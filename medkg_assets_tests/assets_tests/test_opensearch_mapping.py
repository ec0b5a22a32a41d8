"""`opensearch_mapping_matches_profile`: the written index template fits the profile and OpenSearch."""

import copy
import json

import pytest
from dagster import AssetCheckKey, AssetKey, AssetSelection, materialize

from medkg_assets.search.opensearch_mapping import build_index_template, name_problems, template_problems
from medkg_assets.storage.layout import ArtifactLayout
from medkg_assets_tests.conftest import current_settings
from medkg_assets_tests.pipeline import (
    INGEST,
    _all_assets_and_checks,
    definitions,
    index,
    ingest,
    partition_tags,
)

CHECK_KEY = AssetCheckKey(AssetKey("opensearch_mapping"), "opensearch_mapping_matches_profile")
PROFILE = "minilm_cpu"


def _evaluation(result):
    [evaluation] = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.event_specific_data.check_name == CHECK_KEY.name
    ]
    return evaluation


@pytest.mark.slow
def test_the_check_passes_on_a_built_partition_and_names_what_a_tampered_template_breaks(
    config_dir, instance
):
    ingest(instance, "tiny")
    built = index(
        instance, "tiny", PROFILE, selection=AssetSelection.assets("opensearch_mapping").upstream() - INGEST
    )
    evaluation = _evaluation(built)
    assert evaluation.passed, evaluation.description
    assert evaluation.metadata["expected_dims"].value == 384 and evaluation.metadata["sparse_enabled"].value
    assert evaluation.blocking and evaluation.partition == f"tiny|{PROFILE}"

    path = ArtifactLayout(current_settings().data_dir).opensearch_mapping("tiny", PROFILE)
    template = json.loads(path.read_text())
    properties = template["template"]["mappings"]["properties"]
    properties["dense_vector"]["dimension"] = 768
    del properties["splade_terms"]
    properties["Title Text"] = properties.pop("title")
    template["index_patterns"] = ["_Tiny-minilm_cpu-*"]
    path.write_text(json.dumps(template))

    # The check alone, on the tampered file (a checks-only run takes its partition from tags).
    defs = definitions()
    rechecked = materialize(
        _all_assets_and_checks(defs),
        instance=instance,
        selection=AssetSelection.checks(defs.get_asset_checks_def(CHECK_KEY)),
        resources=defs.resources,
        tags=partition_tags("tiny", PROFILE),
        raise_on_error=False,
    )
    evaluation = _evaluation(rechecked)
    assert not evaluation.passed
    description = evaluation.description
    assert (
        "knn_vector field 'dense_vector' has dimension 768, profile minilm_cpu says dims=384" in description
    )
    assert "rank_features field 'splade_terms' is missing" in description
    assert "field 'Title Text' is not lower case" in description and "forbidden characters ' '" in description
    assert "index pattern '_Tiny-minilm_cpu-*' is not lower case" in description
    assert "starts with '_'" in description and "matches none of the template's index_patterns" in description
    assert evaluation.metadata["problems"].value == 7


@pytest.mark.slow
def test_with_sparse_disabled_the_check_passes_without_asking_for_rank_features(
    config_dir, instance, monkeypatch
):
    monkeypatch.setenv("EMBEDDER_ENABLE_SPARSE", "false")
    ingest(instance, "tiny")
    selection = AssetSelection.assets("opensearch_mapping").upstream() - INGEST
    evaluation = _evaluation(index(instance, "tiny", PROFILE, selection=selection))
    assert evaluation.passed and evaluation.metadata["sparse_enabled"].value is False
    assert "sparse disabled" in evaluation.description


def test_the_built_template_of_every_profile_has_no_problems():
    config = current_settings()
    for name in config.profiles.names:
        profile = config.profiles.get(name)
        assert (
            template_problems(
                build_index_template("medquad_sample", profile), "medquad_sample", profile, True
            )
            == []
        )


def test_rank_features_is_only_required_when_sparse_is_enabled():
    profile = current_settings().profiles.get(PROFILE)
    template = build_index_template("tiny", profile)
    without = copy.deepcopy(template)
    del without["template"]["mappings"]["properties"]["splade_terms"]
    assert template_problems(without, "tiny", profile, sparse_enabled=False) == []
    assert template_problems(without, "tiny", profile, sparse_enabled=True) == [
        "sparse is enabled but the rank_features field 'splade_terms' is missing"
    ]


def test_a_namespace_that_makes_invalid_index_and_alias_names_is_reported():
    profile = current_settings().profiles.get(PROFILE)
    problems = template_problems(build_index_template("med#quad", profile), "med#quad", profile, True)
    assert any(
        p.startswith("index 'med#quad-minilm_cpu-") and "forbidden characters '#'" in p for p in problems
    )
    assert "alias 'med#quad-read' contains forbidden characters '#'" in problems
    assert "template 'med#quad-minilm_cpu' contains forbidden characters '#'" in problems


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("Upper", "is not lower case"),
        ("a,b", "forbidden characters ','"),
        ("a:b", "forbidden characters ':'"),
        ("a+b", "forbidden characters '+'"),
        ("-a", "starts with '-'"),
        ("+a", "starts with '+'"),
        ("_a", "starts with '_'"),
        ("..", "may not be '..'"),
        ("é" * 128, "256 bytes (max 255)"),
        ("", "is empty"),
    ],
)
def test_invalid_opensearch_names(name, problem):
    assert any(problem in p for p in name_problems("index", name)), name_problems("index", name)


def test_valid_opensearch_names():
    assert name_problems("index", "single_vector.qwen3.4096.v1-qwen3_vllm-0123abcd") == []
    assert name_problems("index", "a" * 255) == []
    assert name_problems("index pattern", "tiny-minilm_cpu-*", wildcard=True) == []
    assert name_problems("index", "tiny-*") != []
    assert name_problems("field", "dense_vector") == [] and name_problems("field", "a.b") != []
