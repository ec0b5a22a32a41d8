"""A baseline → candidate swap on a namespace: canary, percentage rollout, gated promotion, and a
timed rollback drill, driven the way an operator would (`medkg promote|status|rollback|search`)."""

import json
import time

import pytest
import yaml
from dagster import AssetKey, DagsterInstance, build_sensor_context

from medkg_assets.cli import main as medkg
from medkg_assets.orchestration.partitions import register_namespaces
from medkg_assets.rollout.serving import ServingState
from medkg_assets.storage.layout import ArtifactLayout
from medkg_assets_tests.conftest import current_settings
from medkg_assets_tests.pipeline import definitions, index, index_requests_after_ingest, ingest

pytestmark = pytest.mark.slow
BASELINE, CANDIDATE = "minilm_cpu", "minilm_hnsw_cpu"  # same vectors, flat vs HNSW index
PER_PROFILE_ASSETS = ("dense_embeddings", "faiss_index", "sparse_vectors", "rerank_manifest")


@pytest.fixture
def dagster_home(tmp_path, monkeypatch, config_dir, data_dir):
    """A persistent instance in a temp DAGSTER_HOME, shared by the test and the `medkg` commands."""
    from medkg_assets.settings import PROJECT_ROOT

    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((PROJECT_ROOT / "dagster.yaml").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with DagsterInstance.get() as instance:
        register_namespaces(instance, current_settings().namespaces)
        yield instance


def start_rollout(config_dir, monkeypatch, canary=(), percentage=None):
    environment = config_dir / "test.yaml"
    body = yaml.safe_load(environment.read_text())
    body["rollout"] = {"canary_namespaces": list(canary)}
    environment.write_text(yaml.safe_dump(body))
    monkeypatch.setenv("EMBEDDING_PROFILE_EXPERIMENT", CANDIDATE)
    if percentage is not None:
        monkeypatch.setenv("PROFILE_ROLLOUT_PERCENTAGE", str(percentage))


def live():
    return ServingState.load(ArtifactLayout(current_settings().data_dir).serving_state("tiny"), "tiny").live


def build_both_profiles(instance):
    ingest(instance, "tiny")
    for profile in (BASELINE, CANDIDATE):
        index(instance, "tiny", profile)


def materialisation_count(instance):
    return sum(
        len(instance.fetch_materializations(AssetKey(n), limit=1000).records) for n in PER_PROFILE_ASSETS
    )


def test_canary_promotion_and_rollback_drill(config_dir, dagster_home, monkeypatch, capsys):
    instance = dagster_home
    build_both_profiles(instance)
    assert medkg(["promote", "--namespace", "tiny"]) == 0
    assert live().profile == BASELINE

    start_rollout(config_dir, monkeypatch, canary=["tiny"])
    assert current_settings().serving_target("tiny") == CANDIDATE
    capsys.readouterr()
    assert medkg(["promote", "--namespace", "tiny"]) == 0
    assert live().profile == CANDIDATE and live().versions.keys() >= {"dense", "faiss", "sparse", "lucene"}
    assert medkg(["status"]) == 0
    status = capsys.readouterr().out
    assert f"candidate={CANDIDATE}" in status
    row = next(line for line in status.splitlines() if line.startswith("tiny "))
    assert row.split()[:4] == ["tiny", CANDIDATE, CANDIDATE, "yes"] and "all passed | all passed" in row
    assert medkg(["search", "diabetes", "--namespace", "tiny", "--mode", "dense", "--json"]) == 0
    capsys.readouterr()

    before = materialisation_count(instance)
    started = time.perf_counter()
    assert medkg(["rollback", "--namespace", "tiny"]) == 0
    drill_s = time.perf_counter() - started
    print(f"\nrollback drill: {CANDIDATE} → {BASELINE} in {drill_s:.2f}s (target < 60 s, runbook RTO 5 min)")
    assert drill_s < 60
    assert live().profile == BASELINE
    assert materialisation_count(instance) == before  # nothing recomputed
    serving = instance.get_latest_materialization_event(AssetKey("serving_alias")).asset_materialization
    assert serving.partition == "tiny" and serving.metadata["live_profile"].value == BASELINE
    assert medkg(["rollback", "--namespace", "tiny"]) == 1  # no earlier profile left


def test_promotion_is_refused_when_the_candidate_recall_drops_more_than_five_percent(
    config_dir, dagster_home, monkeypatch, capsys
):
    build_both_profiles(dagster_home)
    assert medkg(["promote", "--namespace", "tiny", "--profile", BASELINE]) == 0
    history = ArtifactLayout(current_settings().data_dir).recall_history("tiny", CANDIDATE)
    recorded = json.loads(history.read_text())
    recorded[-1]["recall@10"] = live().recall_at_10 * 0.94
    history.write_text(json.dumps(recorded))
    capsys.readouterr()
    assert medkg(["promote", "--namespace", "tiny", "--profile", CANDIDATE]) == 1
    assert "more than 5% below" in capsys.readouterr().err
    assert live().profile == BASELINE


def test_percentage_rollout_and_the_canary_sensor_build_the_candidate_alongside(
    config_dir, dagster_home, monkeypatch
):
    instance = dagster_home
    start_rollout(config_dir, monkeypatch, percentage=0)
    assert current_settings().profiles_for("tiny") == [BASELINE]
    start_rollout(config_dir, monkeypatch, percentage=100)
    assert current_settings().profiles_for("tiny") == [BASELINE, CANDIDATE]
    namespace_source_sensor = definitions().resolve_sensor_def("namespace_source_sensor")
    [request] = namespace_source_sensor(build_sensor_context(instance=instance)).run_requests
    _, requests = index_requests_after_ingest(instance, request)
    assert [(r.partition_key, r.tags["medkg/rollout"]) for r in requests] == [
        (f"tiny|{BASELINE}", "baseline"),
        (f"tiny|{CANDIDATE}", "candidate"),
    ]


def _write_expected(config_dir, expected_by_profile):
    body = {"tiny": {p: {"expected": {"dev": e}} for p, e in expected_by_profile.items()}}
    (config_dir / "expected_scores.yaml").write_text(yaml.safe_dump(body))


def test_the_ab_report_sets_live_beside_the_candidate_and_expected_scores_gate_promotion(
    config_dir, dagster_home, monkeypatch, capsys
):
    from medkg_assets.manifests.rerank import RerankManifest

    instance = dagster_home
    build_both_profiles(instance)
    assert medkg(["promote", "--namespace", "tiny"]) == 0
    layout = ArtifactLayout(current_settings().data_dir)
    final = {}
    for profile in (BASELINE, CANDIDATE):
        manifest = RerankManifest.load(layout.rerank_manifest("tiny", profile))
        final[profile] = manifest.quality_by_set["dev"][manifest.final_stage]
    # The candidate was recorded 0.05 nDCG@10 better than it now measures: promotion is refused.
    _write_expected(
        config_dir,
        {
            BASELINE: {"ndcg@10": {"value": final[BASELINE]["ndcg@10"], "tolerance": 0.01}},
            CANDIDATE: {"ndcg@10": {"value": final[CANDIDATE]["ndcg@10"] + 0.05, "tolerance": 0.01}},
        },
    )
    start_rollout(config_dir, monkeypatch, canary=["tiny"])
    capsys.readouterr()
    assert medkg(["promote", "--namespace", "tiny"]) == 1
    refusal = capsys.readouterr().err
    assert (
        "below its expected scores" in refusal and f"dev ndcg@10 {final[CANDIDATE]['ndcg@10']:.4f}" in refusal
    )
    assert live().profile == BASELINE

    report = instance.get_latest_materialization_event(AssetKey("profile_ab_report")).asset_materialization
    shown = {k: v.value for k, v in report.metadata.items()}
    assert report.partition == "tiny" and shown["profiles"] == {"live": BASELINE, "candidate": CANDIDATE}
    quality = shown["quality"].splitlines()
    assert quality[0] == (
        f"| eval set | stage | {BASELINE} (live) nDCG@10 / R@10 / MRR@10 "
        f"| {CANDIDATE} (candidate) nDCG@10 / R@10 / MRR@10 |"
    )
    assert {row.split(" | ")[1] for row in quality[2:]} == {"dense", "sparse", "bm25", "hybrid", "reranked"}
    assert "FAISS bytes" in shown["cost"] and "rerank p50 ms" in shown["cost"]
    statuses = {
        row.split(" | ")[0].strip("| "): row.split(" | ")[-1].strip(" |")
        for row in shown["expected_scores"].splitlines()[2:]
    }
    assert statuses == {BASELINE: "ok", CANDIDATE: "below"}
    stored = json.loads(layout.ab_report("tiny").read_text())
    assert [p["profile"] for p in stored["profiles"]] == [BASELINE, CANDIDATE]

    # Re-measured and recorded again: the same candidate is promoted.
    _write_expected(
        config_dir, {CANDIDATE: {"ndcg@10": {"value": final[CANDIDATE]["ndcg@10"], "tolerance": 0.01}}}
    )
    assert medkg(["promote", "--namespace", "tiny"]) == 0
    assert live().profile == CANDIDATE
