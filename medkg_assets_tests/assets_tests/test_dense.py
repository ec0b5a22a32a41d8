"""Dense embeddings + FAISS through Dagster: real MiniLM encoding, cache, checks, bad input."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import AssetSelection

from medkg_assets.storage.layout import ArtifactLayout
from medkg_assets.vectors.dense_artifact import DenseArtifact
from medkg_assets_tests.conftest import current_settings
from medkg_assets_tests.pipeline import (
    check_results,
    chunk_records,
    edit_profiles,
    index,
    ingest,
    metadata,
    step_failure,
)

pytestmark = pytest.mark.slow
DENSE_STAGE = AssetSelection.assets("dense_embeddings", "faiss_index")


def dense_artifact(namespace="tiny", profile="minilm_cpu"):
    store = ArtifactLayout(current_settings().data_dir).dense(namespace, profile)
    return DenseArtifact.load(store.current)


def chunk_count(namespace="tiny"):
    return len(chunk_records(namespace))


def corpus(config_dir):
    return config_dir.parent / "data" / "tiny" / "corpus.jsonl"


def run_dense(instance, profile="minilm_cpu", raise_on_error=True):
    return index(instance, "tiny", profile, selection=DENSE_STAGE, raise_on_error=raise_on_error)


def test_dense_and_faiss_materialise_with_metadata_and_passing_checks(config_dir, instance):
    ingest(instance, "tiny")
    result = run_dense(instance)
    dense = metadata(result, "dense_embeddings")
    assert dense["vectors"] == chunk_count() and dense["embeddings_generated"] == chunk_count()
    assert (dense["cache_hits"], dense["cache_misses"], dense["device"]) == (0, chunk_count(), "cpu")
    assert dense["batch_sizes_used"] and "| vectors | encoded |" in dense["summary"]
    faiss_meta = metadata(result, "faiss_index")
    assert (faiss_meta["type"], faiss_meta["ntotal"], faiss_meta["dims"]) == ("flat", chunk_count(), 384)
    checks = check_results(result)
    assert checks["dense_hash_parity"][0] and checks["dense_hash_parity"][1]["baseline_recorded"]
    assert checks["dense_dimension_matches_profile"][0] and checks["faiss_self_recall"][0]
    assert checks["faiss_index_counts_match_chunks"][0]
    artifact = dense_artifact()
    assert artifact.vectors.dtype == np.float32 and artifact.vectors.shape == (chunk_count(), 384)
    assert np.allclose(np.linalg.norm(artifact.vectors, axis=1), 1.0, atol=1e-5)
    # The shard files are plain Parquet: another tool reads the same ids and vectors without this package.
    table = pq.read_table(artifact.directory / "shards", schema=None)
    assert sorted(table.column("chunk_id").to_pylist()) == sorted(artifact.chunk_ids)
    assert table.schema.field("vector").type == pa.list_(pa.float32(), 384)
    assert dense["shards"] == len(artifact.manifest.shards) >= 2


def test_rerun_hits_the_cache_and_keeps_parity(config_dir, instance):
    ingest(instance, "tiny")
    first_hash = metadata(run_dense(instance), "dense_embeddings")["dense_hash"]
    result = run_dense(instance)
    dense = metadata(result, "dense_embeddings")
    assert (dense["embeddings_generated"], dense["cache_hit_ratio"]) == (0, 1.0)
    assert dense["dense_hash"] == first_hash
    passed, meta = check_results(result)["dense_hash_parity"]
    assert passed and not meta["baseline_recorded"]


def test_changing_one_document_reencodes_exactly_its_chunks(config_dir, instance):
    ingest(instance, "tiny")
    run_dense(instance)
    before = dense_artifact()
    lines = corpus(config_dir).read_text().splitlines()
    changed = json.loads(lines[1])
    changed["text"] = "Completely rewritten answer about asthma inhalers and airway inflammation."
    lines[1] = json.dumps(changed)
    corpus(config_dir).write_text("\n".join(lines) + "\n")
    ingest(instance, "tiny")
    dense = metadata(run_dense(instance), "dense_embeddings")
    after = dense_artifact()
    changed_rows = [i for i, d in enumerate(after.doc_ids) if d == changed["_id"]]
    assert dense["embeddings_generated"] == len(changed_rows) == 1
    # Only the changed document's shard is encoded again; the others are kept as they are.
    shard = next(s for s in after.shards() if changed["_id"] in s.doc_ids)
    assert (dense["shards_encoded"], dense["shards_kept"]) == (1, dense["shards"] - 1)
    assert dense["cache_hits"] == len(shard.chunk_ids) - 1
    kept = {c: before.vectors[i] for i, c in enumerate(before.chunk_ids)}
    for row, chunk_id in enumerate(after.chunk_ids):
        if row not in changed_rows:
            assert np.array_equal(after.vectors[row], kept[chunk_id])


def test_deleted_document_vectors_disappear(config_dir, instance):
    ingest(instance, "tiny")
    run_dense(instance)
    lines = corpus(config_dir).read_text().splitlines()
    removed = json.loads(lines[0])["_id"]
    corpus(config_dir).write_text("\n".join(lines[1:]) + "\n")
    ingest(instance, "tiny")
    dense = metadata(run_dense(instance), "dense_embeddings")
    assert dense["embeddings_generated"] == 0
    assert removed not in dense_artifact().doc_ids
    assert metadata(run_dense(instance), "faiss_index")["ntotal"] == chunk_count()


def test_profile_change_reencodes_everything_and_rerecords_the_baseline(config_dir, instance):
    ingest(instance, "tiny")
    run_dense(instance)
    edit_profiles(config_dir, lambda p: p["minilm_cpu"]["dense"].update(max_tokens=128))
    result = run_dense(instance)
    assert metadata(result, "dense_embeddings")["embeddings_generated"] == chunk_count()
    assert check_results(result)["dense_hash_parity"][1]["baseline_recorded"]


def test_wrong_dims_profile_fails_the_dimension_check(config_dir, instance):
    ingest(instance, "tiny")
    run_dense(instance)
    edit_profiles(config_dir, lambda p: p["minilm_cpu"]["dense"].update(dims=512))
    # The index is rebuilt from the stale 384-d vectors; the check must stop the release.
    result = index(
        instance, "tiny", "minilm_cpu", raise_on_error=False, selection=AssetSelection.assets("faiss_index")
    )
    passed, meta = check_results(result)["dense_dimension_matches_profile"]
    assert not passed and meta["error_type"] == "DimensionMismatchError"
    assert (meta["expected_dims"], meta["vector_dims"], meta["index_dims"]) == (512, 384, 384)


def test_model_with_other_dims_fails_the_stage_and_keeps_old_vectors(config_dir, instance):
    ingest(instance, "tiny")
    run_dense(instance)
    good = ArtifactLayout(current_settings().data_dir).dense("tiny", "minilm_cpu").current
    edit_profiles(config_dir, lambda p: p["minilm_cpu"]["dense"].update(dims=768))
    failure = step_failure(run_dense(instance, raise_on_error=False))
    assert "DimensionMismatchError" in failure.error.to_string()
    assert "namespace tiny, profile minilm_cpu" in failure.error.to_string()
    assert ArtifactLayout(current_settings().data_dir).dense("tiny", "minilm_cpu").current == good


def test_gpu_profile_without_gpu_fails_fast_with_its_error_type(config_dir, instance):
    ingest(instance, "tiny")
    failure = step_failure(run_dense(instance, profile="bge_m3", raise_on_error=False))
    assert "GpuNotAvailableError" in failure.error.to_string()
    assert failure.user_failure_data.metadata["error_type"].value == "GpuNotAvailableError"
    assert ArtifactLayout(current_settings().data_dir).dense("tiny", "bge_m3").current is None


def test_missing_local_model_path_is_a_clear_error(config_dir, instance):
    ingest(instance, "tiny")
    edit_profiles(config_dir, lambda p: p["minilm_cpu"]["dense"].update(model="./no/such/model"))
    failure = step_failure(run_dense(instance, raise_on_error=False))
    text = failure.error.to_string()
    assert "ModelLoadError" in text and "./no/such/model" in text and "profile minilm_cpu" in text


def test_unreachable_vllm_endpoint_is_a_clear_error(config_dir, instance, monkeypatch):
    ingest(instance, "tiny")
    monkeypatch.setenv("VLLM_URL", "http://127.0.0.1:9")
    from medkg_assets.resources.encoders import DenseEncoderResource
    from medkg_assets_tests import pipeline

    monkeypatch.setitem(
        pipeline.RESOURCE_OVERRIDES,
        "dense_encoder",
        DenseEncoderResource(vllm_url="http://127.0.0.1:9", vllm_retries=0),
    )
    failure = step_failure(run_dense(instance, profile="minilm_vllm", raise_on_error=False))
    text = failure.error.to_string()
    assert "EncoderUnavailableError" in text and "127.0.0.1:9 is unreachable" in text
