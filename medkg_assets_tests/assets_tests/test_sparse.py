"""SPLADE vectors, Lucene impact + BM25 indexes, the OpenSearch template, and the sparse toggle."""

import pytest
from dagster import AssetKey, AssetSelection, DagsterInstance, execute_job, reconstructable

from medkg_assets.orchestration.partitions import namespace_profile_key, register_namespaces
from medkg_assets.search.lucene import LuceneSearch, quantise
from medkg_assets.storage.layout import ArtifactLayout
from medkg_assets.vectors.sparse_artifact import SparseArtifact
from medkg_assets_tests.conftest import current_settings
from medkg_assets_tests.jobs_for_tests import index_job
from medkg_assets_tests.pipeline import check_results, chunk_records, ingest, metadata

pytestmark = pytest.mark.slow
SPARSE_STAGE = AssetSelection.assets("sparse_vectors", "sparse_index", "opensearch_mapping")


def paths():
    return ArtifactLayout(current_settings().data_dir)


def run_sparse(instance, run_config=None):
    from dagster import materialize

    from medkg_assets_tests.pipeline import _all_assets_and_checks, definitions

    defs = definitions()
    return materialize(
        _all_assets_and_checks(defs),
        instance=instance,
        selection=SPARSE_STAGE,
        partition_key=str(namespace_profile_key("tiny", "minilm_cpu")),
        resources=defs.resources,
        run_config=run_config,
    )


def test_sparse_stage_materialises_within_profile_limits(config_dir, instance):
    ingest(instance, "tiny")
    result = run_sparse(instance)
    sparse = metadata(result, "sparse_vectors")
    chunks = len(chunk_records())
    assert sparse["sparse_enabled"] and sparse["vectors"] == sparse["embeddings_generated"] == chunks
    artifact = SparseArtifact.load(paths().sparse("tiny", "minilm_cpu").current)
    assert all(0 < len(v) <= 400 and max(v.values()) <= 10.0 for v in artifact.vectors)
    assert any(term.startswith("##") for v in artifact.vectors for term in v)  # vocabulary tokens
    lucene = metadata(result, "sparse_index")
    assert (lucene["impact_documents"], lucene["bm25_documents"]) == (chunks, chunks)
    assert all(passed for passed, _ in check_results(result).values())
    template = metadata(result, "opensearch_mapping")
    assert template["published"] is False and "OPENSEARCH_URL" in template["publish_status"]


def test_impact_scores_equal_the_exact_quantised_dot_product(config_dir, instance):
    ingest(instance, "tiny")
    run_sparse(instance)
    artifact = SparseArtifact.load(paths().sparse("tiny", "minilm_cpu").current)
    current = paths().lucene("tiny", "minilm_cpu").current
    search = LuceneSearch(current / "impact", current / "bm25")
    scale = current_settings().profile.sparse.quantization_scale
    documents = {cid: quantise(v, scale) for cid, v in zip(artifact.chunk_ids, artifact.vectors, strict=True)}
    for probe in (artifact.vectors[0], artifact.vectors[-1]):
        query = quantise(dict(list(probe.items())[:12]), scale)
        brute = {cid: sum(w * doc.get(t, 0) for t, w in query.items()) for cid, doc in documents.items()}
        expected = sorted(((cid, s) for cid, s in brute.items() if s > 0), key=lambda p: (-p[1], p[0]))
        hits = search.impact(query, k=len(documents))
        assert {cid: score for cid, score in hits} == {cid: float(s) for cid, s in expected}


def test_bm25_finds_a_chunk_by_its_title(config_dir, instance):
    ingest(instance, "tiny")
    run_sparse(instance)
    first = chunk_records()[0]
    current = paths().lucene("tiny", "minilm_cpu").current
    hits = LuceneSearch(None, current / "bm25").bm25(first["title"], k=3)
    assert hits and hits[0][0] in {r["chunk_id"] for r in chunk_records() if r["title"] == first["title"]}


def test_unchanged_input_reuses_sparse_cache_and_keeps_indexes(config_dir, instance):
    ingest(instance, "tiny")
    run_sparse(instance)
    result = run_sparse(instance)
    again = metadata(result, "sparse_vectors")
    assert (again["embeddings_generated"], again["cache_hit_ratio"]) == (0, 1.0)
    assert metadata(result, "sparse_index")["rebuilt"] is False


@pytest.mark.parametrize("switch", ["environment", "run_config"])
def test_disabled_sparse_warns_downstream_instead_of_failing(config_dir, instance, monkeypatch, switch):
    ingest(instance, "tiny")
    run_config = None
    if switch == "environment":
        monkeypatch.setenv("EMBEDDER_ENABLE_SPARSE", "false")
    else:
        run_config = {"ops": {"sparse_vectors": {"config": {"enable_sparse": False}}}}
    result = run_sparse(instance, run_config)
    sparse = metadata(result, "sparse_vectors")
    assert sparse["sparse_enabled"] is False and "disabled" in sparse["warning"]
    lucene = metadata(result, "sparse_index")
    assert lucene["impact_enabled"] is False and lucene["bm25_documents"] > 0
    assert "disabled" in lucene["warnings"][0]
    assert "disabled" in metadata(result, "opensearch_mapping")["warnings"][0]
    checks = check_results(result)
    assert checks["sparse_index_document_counts"][0]


def test_sparse_index_builds_through_the_multiprocess_executor(config_dir, tmp_path):
    """The JVM starts inside Dagster step subprocesses without hanging."""
    (tmp_path / "dagster_home").mkdir()
    with DagsterInstance.local_temp(str(tmp_path / "dagster_home")) as instance:
        register_namespaces(instance, current_settings().namespaces)
        ingest(instance, "tiny")
        with execute_job(
            reconstructable(index_job),
            instance=instance,
            tags={
                "dagster/partition/namespace": "tiny",
                "dagster/partition/profile": "minilm_cpu",
                "dagster/partition": str(namespace_profile_key("tiny", "minilm_cpu")),
            },
            asset_selection=[AssetKey("sparse_vectors"), AssetKey("sparse_index")],
        ) as result:
            assert result.success
            engine = [e.message for e in result.all_events if e.event_type_value == "ENGINE_EVENT"]
            assert any(
                "multiprocess" in (m or "").lower() or "subprocess" in (m or "").lower() for m in engine
            )
    assert paths().lucene("tiny", "minilm_cpu").current is not None
