"""`medkg eval`: score any BEIR/TREC query set against a built namespace × profile with the rerank
manifest's own pipeline (first stage, RRF fusion, CrossEncoder rerank of the fused top), per stage.

Rankings of chunks become rankings of documents as the manifest's do (each document at its best
chunk), since the judgments are per document; the figures come from evaluation/metrics.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean, median

from medkg_assets.encoders.rerank import CrossEncoderReranker
from medkg_assets.evaluation.eval_set import EvalSet
from medkg_assets.evaluation.metrics import per_query
from medkg_assets.search.fusion import FusionConfig
from medkg_assets.search.retrieval import Retriever
from medkg_assets.stages.reader import STAGES, document_run, rank_stages

# Column → metric name of evaluation/metrics.py, in the order the table shows them.
COLUMNS = {
    "nDCG@10": "ndcg@10",
    "MRR@10": "mrr@10",
    "Recall@10": "recall@10",
    "Recall@100": "recall@100",
    "P@10": "p@10",
}
DocRun = dict[str, list[tuple[str, float]]]


@dataclass
class StageScores:
    means: dict[str, float]  # metric → mean over judged queries
    per_query: dict[str, dict[str, float]]  # query id → metric → value

    def spread(self, metric: str = "ndcg@10") -> tuple[float, float, float]:
        """Min, median and max of `metric` over the judged queries."""
        values = [scores[metric] for scores in self.per_query.values()] or [0.0]
        return min(values), median(values), max(values)


@dataclass
class QuerySetResult:
    queries: int
    runs: dict[str, DocRun]  # stage → query id → document ranking (doc id, score), best first
    scores: dict[str, StageScores]
    warnings: list[str] = field(default_factory=list)


def rank_query_set(
    retriever: Retriever,
    eval_set: EvalSet,
    stages: list[str],
    fusion: FusionConfig,
    k: int,
    model: CrossEncoderReranker | None = None,
    batch_cap: int = 64,
) -> QuerySetResult:
    """Document rankings of every requested stage for the eval set's queries, and their scores,
    under the partition's fusion settings; `reranked` needs `model` (the profile's CrossEncoder)."""
    query_ids = list(eval_set.queries)
    texts = [eval_set.queries[q] for q in query_ids]
    warnings = []
    if "sparse" in stages and not retriever.has_sparse:
        warnings.append("sparse skipped: sparse vectors are disabled for this namespace × profile")
    wanted = model if "reranked" in stages else None
    runs = rank_stages(retriever, texts, fusion, k, wanted, batch_cap).runs
    chunk_to_doc = retriever.doc_ids(r for rankings in runs.values() for r in rankings)
    doc_runs = {
        stage: document_run(query_ids, runs[stage], chunk_to_doc) for stage in stages if stage in runs
    }
    metrics = list(COLUMNS.values())
    scores = {}
    for stage in [s for s in STAGES if s in doc_runs]:
        ids = {q: [d for d, _ in ranking] for q, ranking in doc_runs[stage].items()}
        values = per_query(ids, eval_set.qrels, metrics)
        means = {m: fmean(v[m] for v in values.values()) if values else 0.0 for m in metrics}
        scores[stage] = StageScores(means=means, per_query=values)
    return QuerySetResult(
        queries=len(query_ids), runs={s: doc_runs[s] for s in scores}, scores=scores, warnings=warnings
    )


def write_trec_runs(result: QuerySetResult, run_dir: Path, k: int) -> list[Path]:
    """One TREC run file per stage, `<run_dir>/<stage>.run`: `qid Q0 docid rank score stage`."""
    run_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for stage, run in result.runs.items():
        path = run_dir / f"{stage}.run"
        with path.open("w", encoding="utf-8") as handle:
            for query_id, ranking in run.items():
                for rank, (doc_id, score) in enumerate(ranking[:k], start=1):
                    handle.write(f"{query_id} Q0 {doc_id} {rank} {score!r} {stage}\n")
        written.append(path)
    return written


def format_table(result: QuerySetResult) -> str:
    """Per stage: the mean of each metric and the min / median / max nDCG@10 over the queries."""
    header = f"{'stage':<10}" + "".join(f" {name:>10}" for name in COLUMNS) + "  nDCG@10 min/median/max"
    lines = [header]
    for stage, scores in result.scores.items():
        low, middle, high = scores.spread()
        cells = "".join(f" {scores.means[metric]:>10.4f}" for metric in COLUMNS.values())
        lines.append(f"{stage:<10}{cells}  {low:.4f} / {middle:.4f} / {high:.4f}")
    return "\n".join(lines)
