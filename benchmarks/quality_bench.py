"""Retrieval quality and stage timings of a materialised namespace, side by side from one run.

Reads the rerank manifest and processing_summary of `namespace × profile` (made by
`make run NAMESPACE=medquad_full`) and the Dagster run's step timings, and prints MRR@10,
nDCG@10, Recall@10 and Recall@100 for BM25 (the in-run anchor), dense, SPLADE, the RRF fusion
and fusion + CrossEncoder rerank, plus wall time per stage.

Usage: python benchmarks/quality_bench.py [--namespace medquad_full] [--profile minilm_cpu]
"""

from __future__ import annotations

import argparse
import json
import os

import common  # noqa: F401 - sets the offline environment
from common import print_table

LABELS = {
    "bm25": "BM25 (Pyserini)",
    "dense": "dense (MiniLM, FAISS flat)",
    "sparse": "SPLADE (impact)",
    "hybrid": "RRF fusion (dense+SPLADE+BM25)",
    "reranked": "fusion + CrossEncoder rerank (top 20)",
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--namespace", default="medquad_full")
    parser.add_argument("--profile", default="minilm_cpu")
    args = parser.parse_args()
    from dagster import DagsterInstance

    from medkg_assets.settings import Settings
    from medkg_assets.storage.layout import ArtifactLayout

    paths = ArtifactLayout(Settings().data_dir)
    manifest = json.loads(paths.rerank_manifest(args.namespace, args.profile).read_text())
    summary = json.loads(paths.processing_summary(args.namespace, args.profile).read_text())
    quality = manifest["quality"]
    anchor = quality["bm25"]["mrr@10"]
    rows = [
        [
            LABELS[s],
            f"{q['mrr@10']:.4f}",
            f"{q['ndcg@10']:.4f}",
            f"{q['recall@10']:.4f}",
            f"{q['recall@100']:.4f}",
            f"{q['mrr@10'] / anchor:.2f}",
        ]
        for s, q in sorted(quality.items(), key=lambda item: list(LABELS).index(item[0]))
    ]
    print_table(
        f"{args.namespace} × {args.profile}: {manifest['queries']} judged dev questions, "
        f"{summary['metrics']['counts']['documents']:,} answers in "
        f"{summary['metrics']['counts']['chunks']:,} chunks",
        ["system", "MRR@10", "nDCG@10", "Recall@10", "Recall@100", "MRR ÷ BM25"],
        rows,
    )
    if os.environ.get("DAGSTER_HOME"):
        instance = DagsterInstance.get()
        run = instance.get_run_by_id(summary["run_id"])
        stats = instance.get_run_step_stats(run.run_id) if run else []
        step_rows = [[s.step_key, f"{(s.end_time - s.start_time):.1f}"] for s in stats if s.end_time]
        if step_rows:
            print_table("wall time per step (the run that wrote the summary)", ["step", "seconds"], step_rows)
    print(json.dumps(summary["metrics"]["durations_s"], indent=2))


if __name__ == "__main__":
    main()
