"""Stage functions run without Dagster: one StageContext, real components, typed reports."""

import logging

import pyarrow.parquet as pq
import pytest

from medkg_assets.resources.encoders import DenseEncoderResource
from medkg_assets.resources.faiss_store import FaissIndexResource
from medkg_assets.stages.context import StageContext
from medkg_assets.stages.dense import STAGE as DENSE_STAGE
from medkg_assets.stages.dense import DenseReport, embed_dense
from medkg_assets.stages.faiss import build_faiss_index, check_dense_dimensions
from medkg_assets.stages.ingest import build_chunks, chunk_shards, documents_present, read_source_documents
from medkg_assets.stages.reports import StageError, load_report
from medkg_assets_tests.conftest import current_settings


def _ingest(settings):
    documents = read_source_documents(StageContext.build(settings, "tiny"))
    chunks = build_chunks(StageContext.build(settings, "tiny"))
    return documents, chunks


def test_ingest_runs_without_dagster_and_reports_what_it_wrote(config_dir, data_dir):
    documents, chunks = _ingest(current_settings())
    assert (documents.documents, documents.skipped_records, documents.ignored) == (3, 0, [])
    assert chunks.documents == 3 and chunks.chunks >= 3
    layout = StageContext.build(current_settings(), "tiny").layout
    assert layout.chunks("tiny").name == chunks.chunk_version
    assert chunks.to_metadata()["chunk_version"] == chunks.chunk_version


def test_documents_present_reads_only_the_shards_the_documents_hash_to(config_dir, data_dir):
    """How eval sets drop judgments of documents outside the collection without loading its chunks."""
    _, chunks = _ingest(current_settings())
    ctx = StageContext.build(current_settings(), "tiny")
    directory = ctx.layout.chunks("tiny", chunks.chunk_version)
    doc_ids = {
        d for e in chunk_shards(ctx, chunks.chunk_version).shards for d in _doc_ids(directory / e.file)
    }
    assert len(doc_ids) == 3
    assert documents_present(ctx, chunks.chunk_version, doc_ids | {"not-a-document"}) == doc_ids
    assert documents_present(ctx, chunks.chunk_version, set()) == set()


def _doc_ids(path):
    return pq.read_table(path, columns=["doc_id"]).column(0).to_pylist()


def test_a_missing_source_is_a_stage_error_naming_the_fix(config_dir, data_dir):
    (config_dir.parent / "data" / "tiny" / "corpus.jsonl").unlink()
    with pytest.raises(StageError, match=r"namespace tiny: .*fix source.path in .*tiny.yaml"):
        read_source_documents(StageContext.build(current_settings(), "tiny"))


def test_a_per_profile_stage_needs_a_profile(config_dir, data_dir):
    with pytest.raises(ValueError, match="needs a profile"):
        StageContext.build(current_settings(), "tiny").require_profile()


@pytest.mark.slow
def test_dense_and_faiss_stages_run_without_dagster_and_keep_their_report(config_dir, data_dir, caplog):
    settings = current_settings()
    _ingest(settings)
    ctx = StageContext.build(settings, "tiny", "minilm_cpu", log=logging.getLogger("stage-test"))
    with caplog.at_level(logging.INFO, logger="stage-test"):
        dense = embed_dense(ctx, DenseEncoderResource(device="cpu"))
    assert dense.vectors == dense.embeddings_generated > 0 and dense.dims == 384
    assert any("vectors" in message for message in caplog.messages)
    report_path = ctx.layout.stage_report("tiny", "minilm_cpu", DENSE_STAGE)
    assert load_report(report_path, DenseReport, dense.version) == dense
    assert load_report(report_path, DenseReport, "another-version") is None  # describes another artefact
    with pytest.raises(
        StageError, match=r"namespace tiny, profile minilm_cpu: a flat index .* over the FAISS memory"
    ):
        build_faiss_index(ctx, FaissIndexResource(memory_budget_gb=1e-6))
    assert ctx.layout.faiss("tiny", "minilm_cpu").current is None  # refused before anything was written
    index = build_faiss_index(ctx, FaissIndexResource())
    assert (index.type, index.ntotal, index.dims) == ("flat", dense.vectors, 384)
    assert check_dense_dimensions(ctx).passed
    rerun = embed_dense(ctx, DenseEncoderResource(device="cpu"))  # unchanged chunks: all from the cache
    assert (rerun.embeddings_generated, rerun.cache_hit_ratio, rerun.version) == (0, 1.0, dense.version)
