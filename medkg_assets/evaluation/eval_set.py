"""BEIR eval sets: queries.jsonl + qrels TSV (query-id, corpus-id, score)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass
class EvalSet:
    queries: dict[str, str]  # query id → text, only queries that have judgments
    qrels: dict[str, dict[str, int]]  # query id → {doc id: grade}


def load_eval_set(
    queries_path: Path,
    qrels_path: Path,
    documents_present: Callable[[set[str]], set[str]] | None = None,
) -> EvalSet:
    """Judged queries; with `documents_present` (which of these doc ids the collection holds),
    judgments for documents outside the collection are dropped."""
    qrels: dict[str, dict[str, int]] = {}
    with qrels_path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            parts = line.rstrip("\n").split("\t")
            if number == 1 and parts[0] == "query-id":
                continue
            if len(parts) != 3:
                raise ValueError(f"{qrels_path}:{number}: expected 'query-id<TAB>corpus-id<TAB>score'")
            query, doc, grade = parts
            qrels.setdefault(query, {})[doc] = int(grade)
    if documents_present is not None:
        present = documents_present({doc for judged in qrels.values() for doc in judged})
        qrels = {q: {d: g for d, g in judged.items() if d in present} for q, judged in qrels.items()}
        qrels = {q: judged for q, judged in qrels.items() if judged}
    queries = {}
    with queries_path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            record = json.loads(line)
            if record["_id"] in qrels:
                queries[record["_id"]] = record["text"]
    return EvalSet(queries=dict(sorted(queries.items())), qrels={q: qrels[q] for q in sorted(queries)})
