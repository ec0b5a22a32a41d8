"""Readers open one consistent set of artefacts: the chunk version the indexes were built from."""

import json

import pytest
from dagster import AssetSelection

from medkg_assets.cli import main as medkg
from medkg_assets.stages.context import StageContext
from medkg_assets.stages.reader import open_retriever
from medkg_assets.storage.layout import ArtifactLayout
from medkg_assets.storage.pinning import ArtefactSetError
from medkg_assets_tests import pipeline
from medkg_assets_tests.conftest import current_settings
from medkg_assets_tests.pipeline import chunk_records, index, ingest, step_failure

pytestmark = pytest.mark.slow


def paths():
    return ArtifactLayout(current_settings().data_dir)


def shorten_first_document(config_dir) -> str:
    """Cut the tiny corpus's first document to one chunk, so its later chunk ids disappear."""
    corpus = config_dir.parent / "data" / "tiny" / "corpus.jsonl"
    lines = corpus.read_text().splitlines()
    first = json.loads(lines[0])
    first["text"] = " ".join(first["text"].split()[:30])
    corpus.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    return first["_id"]


def retriever():
    resources = pipeline.resources()
    return open_retriever(
        StageContext.build(current_settings(), "tiny", "minilm_cpu"),
        resources["dense_encoder"],
        resources["sparse_encoder"],
        resources["lucene"],
    )


def query_about(config_dir, doc_id) -> str:
    data = config_dir.parent / "data" / "tiny"
    qrels = [line.split("\t") for line in (data / "qrels" / "dev.tsv").read_text().splitlines()[1:]]
    [query_id] = [q for q, d, _ in qrels if d == doc_id]
    queries = [json.loads(line) for line in (data / "queries.jsonl").read_text().splitlines()]
    return next(q["text"] for q in queries if q["_id"] == query_id)


def test_search_after_rebuilding_only_the_chunks_reads_the_indexed_chunk_version(
    config_dir, instance, capsys
):
    ingest(instance, "tiny")
    index(instance, "tiny", "minilm_cpu")
    indexed_version = paths().chunks("tiny").name
    indexed_chunks = set(retriever().ids)
    shortened = shorten_first_document(config_dir)
    ingest(instance, "tiny")  # source_documents + chunks only: a new chunk version
    current_chunks = {r["chunk_id"] for r in chunk_records()}
    gone = indexed_chunks - current_chunks
    assert gone and paths().chunks("tiny").name != indexed_version
    opened = retriever()
    assert opened.chunk_version == indexed_version and set(opened.ids) == indexed_chunks
    assert all(opened.chunk(chunk_id).model_input for chunk_id in gone)  # the index's own texts
    query = query_about(config_dir, shortened)
    returned = set()
    for mode in ("dense", "bm25", "hybrid"):
        assert medkg(["search", query, "--namespace", "tiny", "--mode", mode, "-k", "20", "--json"]) == 0
        returned |= {hit["chunk_id"] for hit in json.loads(capsys.readouterr().out)}
    assert returned & gone  # chunks only the index's version holds are still served, with their text


def test_a_half_rebuilt_index_is_refused_by_every_reader_naming_the_stage_to_rebuild(
    config_dir, instance, capsys
):
    ingest(instance, "tiny")
    index(instance, "tiny", "minilm_cpu")
    shorten_first_document(config_dir)
    ingest(instance, "tiny")
    # What a run killed after the dense stages (before sparse) leaves behind.
    index(instance, "tiny", "minilm_cpu", selection=AssetSelection.assets("dense_embeddings", "faiss_index"))
    with pytest.raises(ArtefactSetError, match="rebuild sparse_vectors, sparse_index"):
        retriever()
    assert medkg(["search", "What is gout?", "--namespace", "tiny"]) == 2
    err = capsys.readouterr().err
    assert "rebuild sparse_vectors, sparse_index: `medkg run --namespace tiny --profile minilm_cpu`" in err
    assert "Traceback" not in err
    for asset in ("rerank_manifest", "processing_summary"):
        result = index(
            instance, "tiny", "minilm_cpu", selection=AssetSelection.assets(asset), raise_on_error=False
        )
        assert not result.success
        failure = step_failure(result)
        text = (failure.user_failure_data.description if failure.user_failure_data else None) or str(
            failure.error.message
        )
        assert "rebuild sparse_vectors, sparse_index" in text, text
    # Rebuilding what the message names makes the set whole again.
    index(instance, "tiny", "minilm_cpu")
    assert retriever().chunk_version == paths().chunks("tiny").name
