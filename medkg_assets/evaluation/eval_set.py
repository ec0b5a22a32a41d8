"""BEIR eval sets: queries.jsonl + qrels TSV (query-id, corpus-id, score)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass
class EvalSet:
    queries: dict[str, str]  # query id → text, only queries that have judgments
    qrels: dict[str, dict[str, int]]  # query id → {doc id: grade}


def load_eval_set(queries_path: Path, qrels_path: Path, doc_ids: set[str] | None = None) -> EvalSet:
    """Judged queries; with `doc_ids`, judgments for documents outside the collection are dropped."""
    qrels: dict[str, dict[str, int]] = {}
    with qrels_path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            parts = line.rstrip("\n").split("\t")
            if number == 1 and parts[0] == "query-id":
                continue
            if len(parts) != 3:
                raise ValueError(f"{qrels_path}:{number}: expected 'query-id<TAB>corpus-id<TAB>score'")
            query, doc, grade = parts
            if doc_ids is None or doc in doc_ids:
                qrels.setdefault(query, {})[doc] = int(grade)
    queries = {}
    with queries_path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            record = json.loads(line)
            if record["_id"] in qrels:
                queries[record["_id"]] = record["text"]
    return EvalSet(queries=dict(sorted(queries.items())), qrels={q: qrels[q] for q in sorted(queries)})
