"""A namespace's judged query sets (`eval:` in its YAML): dev judgments, which are scored and on
which a final stage is selected, and train judgments, the only ones anything is fitted to."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass

from medkg_assets.config.namespaces import EvalSetSpec
from medkg_assets.evaluation.eval_set import EvalSet, load_eval_set
from medkg_assets.stages.context import StageContext

DocumentsPresent = Callable[[set[str]], set[str]]


@dataclass(frozen=True)
class JudgedSet:
    name: str
    split: str  # "dev" or "train"
    judged: EvalSet

    @property
    def query_ids(self) -> list[str]:
        return list(self.judged.queries)

    @property
    def texts(self) -> list[str]:
        return list(self.judged.queries.values())


def _load(
    ctx: StageContext, spec: EvalSetSpec, qrels: str, documents_present: DocumentsPresent | None
) -> EvalSet:
    try:
        return load_eval_set(
            ctx.namespace.resolve(spec.queries), ctx.namespace.resolve(qrels), documents_present
        )
    except (OSError, ValueError, KeyError) as error:
        raise ValueError(
            f"eval set {spec.name} of {ctx.namespace.config_file}: {error}; fix its queries/qrels paths"
        ) from error


def dev_sets(ctx: StageContext, documents_present: DocumentsPresent | None = None) -> list[JudgedSet]:
    """Every eval set's dev judgments, in configuration order (the first is the primary set)."""
    return [
        JudgedSet(spec.name, "dev", _load(ctx, spec, spec.qrels, documents_present))
        for spec in ctx.namespace.eval
    ]


def train_sets(
    ctx: StageContext, documents_present: DocumentsPresent, max_queries: int, seed: int
) -> list[JudgedSet]:
    """The train judgments of the eval sets that have them, each cut to `max_queries` queries
    sampled with `seed` (the same sample on every machine)."""
    out = []
    for spec in ctx.namespace.eval:
        if spec.train_qrels is None:
            continue
        judged = _load(ctx, spec, spec.train_qrels, documents_present)
        ids = sorted(judged.queries)
        if len(ids) > max_queries:
            ids = sorted(random.Random(f"{seed}:{spec.name}").sample(ids, max_queries))
        sample = EvalSet({q: judged.queries[q] for q in ids}, {q: judged.qrels[q] for q in ids})
        if sample.queries:
            out.append(JudgedSet(spec.name, "train", sample))
    return out


def eval_files_digest(ctx: StageContext) -> str:
    """Digest of every judged file the namespace names: an edit to any means scores must be redone."""
    digest = hashlib.sha256()
    for spec in ctx.namespace.eval:
        digest.update(spec.model_dump_json().encode())
        for location in (spec.queries, spec.qrels, spec.train_qrels):
            if location is not None:
                digest.update(ctx.namespace.resolve(location).read_bytes())
    return digest.hexdigest()[:16]
