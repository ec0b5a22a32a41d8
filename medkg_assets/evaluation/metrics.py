"""IR metrics with the standard (trec_eval) definitions, averaged over judged queries.

The figures come from `ir-measures`: trec_eval itself (its pytrec_eval provider) for nDCG, P and
Recall; MRR@k from its MS MARCO provider, as trec_eval's recip_rank has no cutoff (ir-measures'
pytrec_eval provider would silently score the whole ranking). This module only turns our data into
their input and averages the per-query values.

`run`: query id → ranked list of document ids (best first). `qrels`: query id → {doc id: grade}.
Documents with grade ≤ 0 are not relevant (nDCG's gain is the grade; MRR, P and Recall count grade
≥ 1 as relevant). Queries without any relevant judgment are skipped; a judged query missing from
the run scores 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from statistics import fmean
from typing import Any

import ir_measures
from ir_measures import RR, P, R, nDCG

Run = Mapping[str, Sequence[str]]
Qrels = Mapping[str, Mapping[str, int]]

# Metric name → ir-measures measure (without the cutoff): "ndcg@10" is nDCG@10, trec_eval's ndcg_cut.10.
_MEASURES: dict[str, Any] = {"recall": R, "ndcg": nDCG, "mrr": RR, "p": P}
# What the checks, benchmarks and the rerank manifest report.
REPORTED = ("recall@10", "recall@100", "ndcg@10", "mrr@10")


def _judged(qrels: Qrels) -> list[str]:
    return sorted(q for q, judgments in qrels.items() if any(g > 0 for g in judgments.values()))


def _measure(name: str) -> Any:
    kind, _, cutoff = name.partition("@")
    if kind not in _MEASURES or not cutoff.isdigit() or int(cutoff) < 1:
        raise ValueError(
            f"unknown metric {name!r}: expected one of {sorted(_MEASURES)} with @k, e.g. ndcg@10"
        )
    return _MEASURES[kind] @ int(cutoff)


def _library_run(run: Run, queries: set[str]) -> dict[str, dict[str, float]]:
    """Ranks as strictly decreasing scores, so trec_eval's sort by score keeps the given order;
    a document listed twice keeps its first (best) rank."""
    out: dict[str, dict[str, float]] = {}
    for query in queries:
        scored: dict[str, float] = {}
        for doc in run.get(query, []):
            scored.setdefault(doc, float(-len(scored)))
        if scored:
            out[query] = scored
    return out


def per_query(run: Run, qrels: Qrels, metrics: Sequence[str]) -> dict[str, dict[str, float]]:
    """Judged query id → {metric: value} for each metric name ("ndcg@10", "mrr@10", "recall@100", "p@10")."""
    measures = {name: _measure(name) for name in metrics}
    judged = _judged(qrels)
    values = {query: dict.fromkeys(metrics, 0.0) for query in judged}
    library_qrels = {q: {d: max(g, 0) for d, g in qrels[q].items()} for q in judged}
    library_run = _library_run(run, set(judged))
    if not library_run or not measures:
        return values
    names = {str(measure): name for name, measure in measures.items()}
    for metric in ir_measures.iter_calc(list(measures.values()), library_qrels, library_run):
        values[metric.query_id][names[str(metric.measure)]] = float(metric.value)
    return values


def mean_over_queries(run: Run, qrels: Qrels, metrics: Sequence[str]) -> dict[str, float]:
    """Each metric averaged over the judged queries (0.0 when none is judged)."""
    scores = per_query(run, qrels, metrics)
    return {name: fmean(s[name] for s in scores.values()) if scores else 0.0 for name in metrics}


def recall_at_k(run: Run, qrels: Qrels, k: int) -> float:
    """Share of each query's relevant documents found in its top k, averaged."""
    return mean_over_queries(run, qrels, [f"recall@{k}"])[f"recall@{k}"]


def mrr_at_k(run: Run, qrels: Qrels, k: int) -> float:
    """Reciprocal rank of the first relevant document within the top k (0 if none), averaged."""
    return mean_over_queries(run, qrels, [f"mrr@{k}"])[f"mrr@{k}"]


def ndcg_at_k(run: Run, qrels: Qrels, k: int) -> float:
    """nDCG@k with gain = grade and discount 1/log2(rank + 1) (trec_eval's ndcg_cut)."""
    return mean_over_queries(run, qrels, [f"ndcg@{k}"])[f"ndcg@{k}"]


def precision_at_k(run: Run, qrels: Qrels, k: int) -> float:
    """Relevant documents in the top k divided by k (trec_eval's P), averaged."""
    return mean_over_queries(run, qrels, [f"p@{k}"])[f"p@{k}"]


def evaluate(run: Run, qrels: Qrels) -> dict[str, float]:
    """The figures the checks and benchmarks report, rounded for display."""
    return {name: round(value, 4) for name, value in mean_over_queries(run, qrels, REPORTED).items()}
