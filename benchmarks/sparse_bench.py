"""Sparse stage figures: SPLADE encoding throughput, Lucene impact-index build time, search latency.

Encodes the namespace's chunks with the packaged SPLADE model (or reads the materialised sparse
vectors when `--from-artifacts`), builds the impact index, and times 1,000 impact searches with
real MedQuAD questions encoded by the SPLADE query encoder. BM25 on the same questions is timed
side by side.

Usage: python benchmarks/sparse_bench.py [--namespace medquad_sample] [--from-artifacts]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import common  # noqa: F401 - sets the offline environment
from common import print_table


def percentile(values, share):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--namespace", default="medquad_sample")
    parser.add_argument(
        "--from-artifacts",
        action="store_true",
        help="use materialised sparse vectors instead of encoding (for the whole corpus)",
    )
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--encode-limit", type=int, default=0, help="encode only the first N chunks")
    args = parser.parse_args()
    from medkg_assets.encoders.sparse import SpladeEncoder
    from medkg_assets.evaluation.eval_set import load_eval_set
    from medkg_assets.search.lucene import (
        LuceneSearch,
        StoredChunk,
        build_index,
        quantise,
        write_impact_collection,
        write_text_collection,
    )
    from medkg_assets.settings import Settings
    from medkg_assets.storage.layout import ArtifactLayout
    from medkg_assets.text.chunk_shards import iter_chunk_shards
    from medkg_assets.vectors.sparse_artifact import SparseArtifact

    config = Settings()
    profile = config.profiles.get("minilm_cpu")
    namespace = config.namespace(args.namespace)
    paths = ArtifactLayout(config.data_dir)
    chunks = [c for _, shard in iter_chunk_shards(paths.chunks(args.namespace)) for c in shard]
    encoder = SpladeEncoder(profile.sparse, "cpu")
    rows = []
    if args.from_artifacts:
        artifact = SparseArtifact.load(
            paths.sparse(args.namespace, "minilm_cpu").require_current("sparse_vectors")
        )
        pairs = list(zip(artifact.chunk_ids, artifact.vectors, strict=True))
    else:
        subset = chunks[: args.encode_limit] if args.encode_limit else chunks
        encoder.encode_documents([c.model_input for c in subset[:16]])  # warm-up
        started = time.perf_counter()
        vectors = []
        for i in range(0, len(subset), profile.dense.batch_size):
            vectors += encoder.encode_documents(
                [c.model_input for c in subset[i : i + profile.dense.batch_size]]
            )
        encode_s = time.perf_counter() - started
        pairs = [(c.chunk_id, v) for c, v in zip(subset, vectors, strict=True)]
        rows.append(
            [
                "SPLADE document encoding",
                f"{len(subset) / encode_s:.1f} texts/s",
                f"{len(subset)} chunks in {encode_s:.1f} s",
            ]
        )
    work = Path(tempfile.mkdtemp(prefix="medkg-sparse-bench-"))
    stats = write_impact_collection(
        work / "impact_docs" / "docs.jsonl", pairs, profile.sparse.quantization_scale
    )
    started = time.perf_counter()
    build_index("impact", work / "impact_docs", work / "impact")
    impact_build = time.perf_counter() - started
    by_id = {c.chunk_id: c for c in chunks}
    write_text_collection(
        work / "bm25_docs" / "docs.jsonl",
        (StoredChunk.of(by_id[cid]) for cid, _ in pairs),
    )
    started = time.perf_counter()
    build_index("bm25", work / "bm25_docs", work / "bm25")
    bm25_build = time.perf_counter() - started
    rows.append(
        [
            "impact index build (Anserini, 1 thread)",
            f"{impact_build:.1f} s",
            f"{stats.documents} docs, {stats.postings:,} postings",
        ]
    )
    rows.append(["BM25 index build (Anserini, 1 thread)", f"{bm25_build:.1f} s", f"{len(pairs)} docs"])
    eval_set = load_eval_set(
        namespace.resolve(namespace.eval.queries), namespace.resolve(namespace.eval.qrels)
    )
    questions = list(eval_set.queries.values())
    questions = (questions * (args.queries // max(1, len(questions)) + 1))[: args.queries]
    started = time.perf_counter()
    query_weights = []
    for i in range(0, len(questions), 64):
        query_weights += encoder.encode_queries(questions[i : i + 64])
    query_encode_s = time.perf_counter() - started
    search = LuceneSearch(work / "impact", work / "bm25")
    impact_ms, bm25_ms = [], []
    for text, weights in zip(questions, query_weights, strict=True):
        quantised = quantise(weights, profile.sparse.quantization_scale)
        started = time.perf_counter()
        search.impact(quantised, 10)
        impact_ms.append(1000 * (time.perf_counter() - started))
        started = time.perf_counter()
        search.bm25(text, 10)
        bm25_ms.append(1000 * (time.perf_counter() - started))
    rows.append(["SPLADE query encoding", f"{len(questions) / query_encode_s:.1f} queries/s", ""])
    rows.append(
        [
            f"impact search top-10 ({len(questions)} queries)",
            f"p50 {statistics.median(impact_ms):.2f} ms, p95 {percentile(impact_ms, 0.95):.2f} ms",
            "",
        ]
    )
    rows.append(
        [
            f"BM25 search top-10 ({len(questions)} queries)",
            f"p50 {statistics.median(bm25_ms):.2f} ms, p95 {percentile(bm25_ms, 0.95):.2f} ms",
            "",
        ]
    )
    print_table(
        f"Sparse stage on {args.namespace} ({len(pairs)} chunks, CPU, 2 cores)",
        ["measure", "value", "notes"],
        rows,
    )


if __name__ == "__main__":
    main()
