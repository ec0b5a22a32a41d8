"""IR metrics with the standard (trec_eval) definitions, averaged over judged queries.

`run`: query id → ranked list of document ids (best first). `qrels`: query id → {doc id: grade}.
Documents with grade ≤ 0 are not relevant. Queries without any relevant judgment are skipped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

Run = Mapping[str, Sequence[str]]
Qrels = Mapping[str, Mapping[str, int]]


def _judged(qrels: Qrels) -> list[str]:
    return sorted(q for q, judgments in qrels.items() if any(g > 0 for g in judgments.values()))


def recall_at_k(run: Run, qrels: Qrels, k: int) -> float:
    """Share of each query's relevant documents found in its top k, averaged."""
    scores = []
    for query in _judged(qrels):
        relevant = {d for d, g in qrels[query].items() if g > 0}
        top = set(list(run.get(query, []))[:k])
        scores.append(len(relevant & top) / len(relevant))
    return sum(scores) / len(scores) if scores else 0.0


def mrr_at_k(run: Run, qrels: Qrels, k: int) -> float:
    """Reciprocal rank of the first relevant document within the top k (0 if none), averaged."""
    scores = []
    for query in _judged(qrels):
        relevant = {d for d, g in qrels[query].items() if g > 0}
        rank = next((i for i, d in enumerate(list(run.get(query, []))[:k], start=1) if d in relevant), None)
        scores.append(1.0 / rank if rank else 0.0)
    return sum(scores) / len(scores) if scores else 0.0


def ndcg_at_k(run: Run, qrels: Qrels, k: int) -> float:
    """nDCG@k with gain = grade and discount 1/log2(rank + 1) (trec_eval's ndcg_cut)."""
    scores = []
    for query in _judged(qrels):
        grades = qrels[query]
        dcg = sum(
            grades.get(doc, 0) / math.log2(rank + 1)
            for rank, doc in enumerate(list(run.get(query, []))[:k], start=1)
            if grades.get(doc, 0) > 0
        )
        ideal = sorted((g for g in grades.values() if g > 0), reverse=True)[:k]
        idcg = sum(g / math.log2(rank + 1) for rank, g in enumerate(ideal, start=1))
        scores.append(dcg / idcg if idcg else 0.0)
    return sum(scores) / len(scores) if scores else 0.0


def evaluate(run: Run, qrels: Qrels) -> dict[str, float]:
    """The figures the checks and benchmarks report, rounded for display."""
    return {
        "recall@10": round(recall_at_k(run, qrels, 10), 4),
        "recall@100": round(recall_at_k(run, qrels, 100), 4),
        "ndcg@10": round(ndcg_at_k(run, qrels, 10), 4),
        "mrr@10": round(mrr_at_k(run, qrels, 10), 4),
    }
