"""Issue 14, adaptation: the CrossEncoder fine-tuned on the namespace's train judgments, with and
without, on MedQuAD dev and MEDIQA dev in one run.

Works on a `generalisation_bench.py --keep` folder (namespace `medquad_mediqa`, built by
`medkg run` with the base CrossEncoder, fusion tuned with it). This script calls the
`adapted_reranker` stage (mining hard negatives from the hybrid index for every train question,
fine-tuning within the default budget, comparing with the base on both dev sets: what the check
judges), then ranks both dev sets through the same pipeline as the rerank manifest with each
CrossEncoder under the same tuned fusion settings, so the only difference is the model. BM25 is
the in-run anchor. With `--retune` (after a first run adopted the candidate) it instead runs
what the pipeline runs next: `fusion_config` re-tuned with the adopted model, then the rerank
manifest, and prints the manifest's table (a second full tuning: ~30 min on 2 cores).

Usage: python benchmarks/adaptation_bench.py --reuse <generalisation work folder> [--retune]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from statistics import median

import common  # noqa: F401 - sets the offline environment
from common import print_table
from generalisation_bench import NAMESPACE, PROFILE, QUALITY_HEADERS, quality_rows, score_sets


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reuse", type=Path, required=True, help="a generalisation_bench --keep folder")
    parser.add_argument("--retune", action="store_true", help="re-tune fusion with the adopted model")
    args = parser.parse_args()
    root = args.reuse
    os.environ.update(
        MEDKG_CONFIG_DIR=str(root / "config"),
        MEDKG_DATA_DIR=str(root / "medkg"),
        DAGSTER_HOME=str(root / "dagster_home"),
        MEDKG_ENV="development",
    )
    from medkg_assets.definitions import build_resources
    from medkg_assets.settings import PROJECT_ROOT, Settings
    from medkg_assets.stages.adaptation import AdaptationOptions, adapt_reranker
    from medkg_assets.stages.adopted import with_reranker
    from medkg_assets.stages.context import StageContext
    from medkg_assets.stages.fusion_tuning import load_fusion
    from medkg_assets.stages.judged_sets import dev_sets
    from medkg_assets.stages.reader import open_retriever, rank_stages

    os.environ.setdefault("MEDKG_MODELS_DIR", str(PROJECT_ROOT.parent / "shared" / "models"))
    settings = Settings()
    ctx = StageContext.build(settings, NAMESPACE, PROFILE)
    resources = build_resources(settings)
    reranker = resources["reranker"]
    started = time.perf_counter()
    report = adapt_reranker(
        ctx,
        AdaptationOptions(),
        resources["dense_encoder"],
        resources["sparse_encoder"],
        reranker,
        resources["lucene"],
    )
    stage_s = time.perf_counter() - started
    record = report.record
    print(f"namespace {NAMESPACE}, profile {PROFILE}; adapted_reranker stage {stage_s:.0f} s in all\n")
    print_table(
        "Fine-tuning (adapted_reranker)", ["what", "value"], [[k, v] for k, v in record.training.items()]
    )
    print_table(
        "Adapted vs base CrossEncoder on the default hybrid top 20 (what the check judges)",
        ["dev set", "queries", "metric", "base", "adapted", "Δ", "noise", "verdict"],
        [
            [c.name, c.queries, c.metric, c.base, c.adapted, f"{c.delta:+.4f}", c.noise, c.verdict]
            for c in record.comparisons
        ],
    )
    decision = f"adopted {record.adopted}" if record.adopted else "base kept"
    print(f"decision: {decision} — {record.reason}\n")
    if args.retune:
        retune(ctx, resources)
        return
    if record.candidate is None:
        return
    profile = settings.profiles.get(PROFILE)
    candidate = ctx.layout.adapted_rerankers(NAMESPACE, PROFILE).version(record.candidate)
    models = {
        "base CrossEncoder": reranker.open(profile, settings.models_dir),
        "adapted CrossEncoder": reranker.open(with_reranker(profile, candidate), settings.models_dir),
    }
    retriever = open_retriever(
        ctx, resources["dense_encoder"], resources["sparse_encoder"], resources["lucene"]
    )
    sets = {s.name: s for s in dev_sets(ctx, retriever.documents_present)}
    fusion = load_fusion(ctx)
    for label, model in models.items():
        ranked = {
            n: rank_stages(retriever, s.texts, fusion, 100, model, reranker.batch_cap)
            for n, s in sets.items()
        }
        quality = score_sets({n: r.runs for n, r in ranked.items()}, sets, retriever)
        latency = median(ms for r in ranked.values() for ms in r.latency_ms)
        print_table(
            f"Every stage with the {label} (tuned fusion: final {fusion.final_stage}, rerank depth "
            f"{fusion.rerank_depth}, blend {fusion.rerank_weight}); rerank p50 {latency:.0f} ms/query",
            QUALITY_HEADERS,
            quality_rows(quality, fusion.final_stage),
        )


def retune(ctx, resources) -> None:
    """`fusion_config` then `rerank_manifest`, as the pipeline runs them after an adoption."""
    from medkg_assets.stages.fusion_tuning import TuningOptions, tune_fusion
    from medkg_assets.stages.rerank import RetrievalOptions, build_rerank_manifest

    models = [resources[k] for k in ("dense_encoder", "sparse_encoder", "reranker", "lucene")]
    started = time.perf_counter()
    tuned = tune_fusion(ctx, TuningOptions(), *models)
    tuning_s = time.perf_counter() - started
    report = build_rerank_manifest(ctx, RetrievalOptions(), *models)
    fusion = tuned.fusion
    print(
        f"fusion_config re-tuned in {tuning_s:.0f} s: RRF k {fusion.rrf_k}, weights {fusion.weights}, "
        f"rerank depth {fusion.rerank_depth}, blend {fusion.rerank_weight}; train {tuned.train}\n"
    )
    print_table(
        f"rerank_manifest with the adopted CrossEncoder, re-tuned fusion (final {report.final_stage}); "
        f"rerank p50 {report.rerank_latency_ms.get('p50', 0):.0f} ms/query",
        QUALITY_HEADERS,
        quality_rows(report.quality_by_set, report.final_stage),
    )


if __name__ == "__main__":
    main()
