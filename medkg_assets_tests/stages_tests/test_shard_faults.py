"""Bad shards never make a silently short index: a clear error naming the shard and the fix, or an
automatic redo of that shard. Stage functions called directly on the tiny corpus (real MiniLM)."""

import json
import threading

import pyarrow.parquet as pq
import pytest

from medkg_assets.resources.encoders import DenseEncoderResource
from medkg_assets.resources.faiss_store import FaissIndexResource
from medkg_assets.stages.context import StageContext
from medkg_assets.stages.dense import embed_dense, embed_dense_shard, plan_dense, publish_dense
from medkg_assets.stages.faiss import build_faiss_index, check_index_counts
from medkg_assets.stages.ingest import build_chunks, read_source_documents
from medkg_assets.stages.reports import StageError
from medkg_assets.storage.shards import MANIFEST_FILE, ShardManifest
from medkg_assets.vectors.dense_artifact import DenseArtifact
from medkg_assets_tests.conftest import current_settings
from medkg_assets_tests.pipeline import tree_bytes

pytestmark = pytest.mark.slow
ENCODERS = DenseEncoderResource(device="cpu")


def ingested() -> StageContext:
    settings = current_settings()
    read_source_documents(StageContext.build(settings, "tiny"))
    build_chunks(StageContext.build(settings, "tiny"))
    return StageContext.build(settings, "tiny", "minilm_cpu")


def test_a_corrupt_chunk_shard_is_an_error_naming_the_file_and_the_fix(config_dir, data_dir):
    ctx = ingested()
    version = ctx.layout.chunks("tiny")
    entry = ShardManifest.load(version).shards[0]
    (version / entry.file).write_bytes(b"PAR1 not really parquet")
    with pytest.raises(StageError, match=rf"{entry.name}.parquet is unreadable .*rebuild the chunks"):
        embed_dense(ctx, ENCODERS)
    assert ctx.layout.dense("tiny", "minilm_cpu").current is None  # nothing published


def test_a_shard_whose_rows_disagree_with_its_manifest_is_refused(config_dir, data_dir):
    ctx = ingested()
    embed_dense(ctx, ENCODERS)
    published = ctx.layout.dense("tiny", "minilm_cpu").current
    manifest = json.loads((published / MANIFEST_FILE).read_text())
    manifest["shards"][0]["rows"] += 1
    (published / MANIFEST_FILE).write_text(json.dumps(manifest))
    name = manifest["shards"][0]["name"]
    with pytest.raises(
        StageError, match=rf"{name}.parquet has \d+ rows, its manifest says \d+; rebuild dense"
    ):
        build_faiss_index(ctx, FaissIndexResource())
    assert ctx.layout.faiss("tiny", "minilm_cpu").current is None


def test_a_torn_shard_output_is_encoded_again_and_the_result_is_whole(config_dir, data_dir):
    ctx = ingested()
    reference = embed_dense(ctx, ENCODERS)
    work = sorted((ctx.layout.dense("tiny", "minilm_cpu").root / "work").glob("*.parquet"))
    torn = work[0]
    half = torn.with_suffix(".half")
    half.write_bytes(torn.read_bytes()[: torn.stat().st_size // 2])
    half.replace(torn)  # a damaged output (its own file: the published copy is a separate link)
    (ctx.layout.dense("tiny", "minilm_cpu").root / "CURRENT").unlink()  # as if never published
    again = embed_dense(ctx, ENCODERS)
    assert again.shards_encoded == 1 and again.shards_kept == again.shards - 1
    assert again.dense_hash == reference.dense_hash and pq.read_table(torn).num_rows > 0


def test_publishing_with_a_missing_shard_output_names_it(config_dir, data_dir):
    ctx = ingested()
    plan = plan_dense(ctx, ENCODERS)
    outcomes = [embed_dense_shard(ctx, ENCODERS, task) for task in plan.tasks]
    lost = plan.tasks[-1]
    (ctx.layout.dense("tiny", "minilm_cpu").root / "work" / f"{lost.key}.parquet").unlink()
    with pytest.raises(StageError, match=rf"{lost.name} .*missing or unreadable; rerun the stage"):
        publish_dense(ctx, plan, outcomes)
    assert ctx.layout.dense("tiny", "minilm_cpu").current is None


def test_two_runs_writing_the_same_partition_at_once_publish_the_same_version(config_dir, data_dir):
    ctx = ingested()
    reports, errors = [], []

    def run() -> None:
        try:
            reports.append(embed_dense(ctx, ENCODERS))
        except Exception as error:  # noqa: BLE001 - the test reports any failure below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(reports) == 2
    assert reports[0].version == reports[1].version == ctx.layout.dense("tiny", "minilm_cpu").current.name
    artifact = DenseArtifact.load(ctx.layout.dense("tiny", "minilm_cpu").current)
    assert artifact.count == reports[0].vectors and tree_bytes(artifact.directory)


def test_the_counts_check_names_a_shard_missing_from_the_index(config_dir, data_dir):
    ctx = ingested()
    embed_dense(ctx, ENCODERS)
    published = ctx.layout.dense("tiny", "minilm_cpu").current
    manifest = json.loads((published / MANIFEST_FILE).read_text())
    dropped = manifest["shards"].pop()  # a dense version that silently lost a shard
    (published / MANIFEST_FILE).write_text(json.dumps(manifest))
    build_faiss_index(ctx, FaissIndexResource())
    outcome = check_index_counts(ctx)
    assert not outcome.passed
    assert f"{dropped['name']}: 0 vectors for {dropped['rows']} chunks" in outcome.description
    assert "FAISS ntotal" in outcome.description and "rebuild dense_embeddings" in outcome.description
