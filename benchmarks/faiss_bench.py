"""HNSW vs exact flat search on real embeddings: recall@10 and queries per second, side by side.

Needs the dense embeddings of a namespace (default: the whole MedQuAD corpus, made by
`make run NAMESPACE=medquad_full`). Queries are the namespace's eval questions, encoded with
the same model. Target: recall@10 ≥ 0.98 at ≥ 10× the flat QPS.

Usage: python benchmarks/faiss_bench.py [--namespace medquad_full] [--queries 1000]
"""

from __future__ import annotations

import argparse
import time

import common  # noqa: F401 - sets the offline environment
import faiss
import numpy as np
from common import print_table


def timed_search(index, queries, k, repeats=3):
    """Best of `repeats`: the whole query matrix in one call (batched, BLAS for flat)."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        _, ids = index.search(queries, k)
        best = min(best, time.perf_counter() - started)
    return ids, best


def timed_one_by_one(index, queries, k):
    """One query per call, as a serving path sees them."""
    started = time.perf_counter()
    for row in range(len(queries)):
        index.search(queries[row : row + 1], k)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--namespace", default="medquad_full")
    parser.add_argument("--queries", type=int, default=1000)
    args = parser.parse_args()
    from medkg_assets.encoders.dense import SentenceTransformerEncoder
    from medkg_assets.evaluation.eval_set import load_eval_set
    from medkg_assets.model_reference import resolve_model
    from medkg_assets.settings import Settings
    from medkg_assets.storage.layout import ArtifactLayout
    from medkg_assets.vectors.dense_artifact import DenseArtifact
    from medkg_assets.vectors.faiss_indexes import build_index

    config = Settings()
    namespace = config.namespace(args.namespace)
    profile = config.profiles.get("minilm_hnsw_cpu")
    dense = DenseArtifact.load(
        ArtifactLayout(config.data_dir)
        .dense(args.namespace, "minilm_cpu")
        .require_current(f"dense_embeddings for {args.namespace}|minilm_cpu")
    )
    eval_set = load_eval_set(
        namespace.resolve(namespace.eval.queries), namespace.resolve(namespace.eval.qrels)
    )
    texts = list(eval_set.queries.values())[: args.queries]
    encoder = SentenceTransformerEncoder(resolve_model(profile.dense.model).location, "cpu", True, 256)
    queries = np.ascontiguousarray(encoder.encode(texts), dtype=np.float32)
    vectors = dense.vectors
    started = time.perf_counter()
    flat = build_index(vectors, config.profiles.get("minilm_cpu").index).index
    flat_build = time.perf_counter() - started
    started = time.perf_counter()
    hnsw = build_index(vectors, profile.index).index
    hnsw_build = time.perf_counter() - started
    truth, flat_s = timed_search(flat, queries, 10)
    flat_single = timed_one_by_one(flat, queries, 10)
    n = len(texts)
    rows = [
        [
            "flat (exact IP)",
            "-",
            f"{flat_build:.1f}",
            "1.0000",
            f"{n / flat_s:,.0f}",
            "1.0",
            f"{n / flat_single:,.0f}",
            "1.0",
        ]
    ]
    for ef in (32, 64, 128, 256):
        hnsw.hnsw.efSearch = ef
        found, hnsw_s = timed_search(hnsw, queries, 10)
        hnsw_single = timed_one_by_one(hnsw, queries, 10)
        recall = np.mean([len(set(t) & set(f)) / 10 for t, f in zip(truth, found, strict=True)])
        rows.append(
            [
                f"HNSW M={profile.index.m} efC={profile.index.ef_construction}",
                ef,
                f"{hnsw_build:.1f}",
                f"{recall:.4f}",
                f"{n / hnsw_s:,.0f}",
                f"{flat_s / hnsw_s:.1f}",
                f"{n / hnsw_single:,.0f}",
                f"{flat_single / hnsw_single:.1f}",
            ]
        )
    print_table(
        f"FAISS on {args.namespace}: {len(vectors):,} × {vectors.shape[1]} MiniLM vectors, "
        f"{len(texts)} real queries, {faiss.omp_get_max_threads()} threads",
        [
            "index",
            "efSearch",
            "build s",
            "recall@10 vs flat",
            "QPS batched",
            "÷ flat",
            "QPS one-by-one",
            "÷ flat",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
