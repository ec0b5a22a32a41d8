"""Reranker adaptation stage (per namespace × profile): fine-tune the profile's CrossEncoder on the
namespace's train judgments, with hard negatives mined from its own hybrid index, then compare it
with its base on every dev set. The adapted model is used (by the fusion tuning, the rerank
manifest, `medkg eval` and `medkg search`) only when it wins or ties within noise on all of them;
otherwise the profile keeps its base and the record says why. Nothing is fitted to dev.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence

from pydantic import BaseModel, Field

from medkg_assets.encoders.cross_encoder_training import TrainingBudget, TrainingPair, fine_tune_cross_encoder
from medkg_assets.encoders.rerank import CrossEncoderReranker, RerankerUnavailableError
from medkg_assets.evaluation.adaptation import SetComparison, compare_on_set, judge_adaptation
from medkg_assets.evaluation.metrics import per_query
from medkg_assets.model_reference import resolve_model
from medkg_assets.progress import Progress
from medkg_assets.search.fusion import FusionConfig
from medkg_assets.search.retrieval import Ranking, Retriever
from medkg_assets.stages.adopted import AdaptationRecord, load_record, with_reranker
from medkg_assets.stages.context import StageContext
from medkg_assets.stages.dense import DenseEncoders
from medkg_assets.stages.judged_sets import JudgedSet, dev_sets, eval_files_digest, train_sets
from medkg_assets.stages.lucene import LuceneIndexes
from medkg_assets.stages.reader import (
    RERANK_DISABLED_WARNING,
    Rerankers,
    document_run,
    open_retriever,
    rerank_candidates,
)
from medkg_assets.stages.reports import (
    CheckOutcome,
    Metadata,
    Report,
    StageError,
    markdown_table,
    path_value,
)
from medkg_assets.stages.sparse import SparseEncoders
from medkg_assets.storage.atomic import atomic_write_json, canonical_json
from medkg_assets.storage.pinning import ArtefactSetError

ADAPTATION_CODE_VERSION = "adapt-1"
COMPARED_METRIC = "ndcg@10"


class AdaptationOptions(BaseModel):
    """Train sample and mining (`negatives_per_query` drawn from the hybrid top `mining_depth`),
    the training budget (flat fields, so the asset's run config takes them) and the tie margin."""

    enabled: bool = True
    max_train_queries: int = Field(default=1000, ge=1)
    negatives_per_query: int = Field(default=3, ge=1)
    mining_depth: int = Field(default=30, ge=2)
    max_steps: int = Field(default=500, ge=1)
    max_seconds: float = Field(default=1800.0, gt=0)
    batch_size: int = Field(default=16, ge=1)
    learning_rate: float = Field(default=5e-5, gt=0)
    seed: int = 42
    min_noise: float = Field(default=0.005, ge=0)

    @property
    def budget(self) -> TrainingBudget:
        return TrainingBudget(
            max_steps=self.max_steps,
            max_seconds=self.max_seconds,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            seed=self.seed,
        )


class AdaptationReport(Report):
    record: AdaptationRecord
    rebuilt: bool
    path: str

    def to_metadata(self) -> Metadata:
        record = self.record
        rows = [
            [
                c.name,
                c.queries,
                f"{c.base:.4f}",
                f"{c.adapted:.4f}",
                f"{c.delta:+.4f}",
                f"±{c.noise:.4f}",
                c.verdict,
            ]
            for c in record.comparisons
        ]
        return {
            "reranker_in_use": f"adapted {record.adopted}" if record.adopted else f"base {record.base_model}",
            "candidate": record.candidate or "none",
            "reason": record.reason,
            f"dev_{COMPARED_METRIC}": markdown_table(
                ["dev set", "queries", "base", "adapted", "Δ", "noise", "verdict"], rows
            )
            if rows
            else "not compared",
            "training": markdown_table(["what", "value"], [[k, v] for k, v in record.training.items()])
            if record.training
            else "not trained",
            "rebuilt": self.rebuilt,
            "path": path_value(self.path),
        }


def mine_training_pairs(
    sets: Sequence[JudgedSet], retriever: Retriever, negatives: int, depth: int, seed: int
) -> tuple[list[TrainingPair], int]:
    """Per train query: each judged-relevant document's best chunk in the hybrid top 100 (label 1)
    and `negatives` chunks drawn from the hybrid top `depth` of documents not judged relevant and
    not titled like a positive (likely unjudged duplicates). Returns the pairs and the queries used."""
    pairs: list[TrainingPair] = []
    used = 0
    for judged in sets:
        hybrid = retriever.first_stage(judged.texts, max(depth, 100))["hybrid"] if judged.texts else []
        for query_id, text, ranking in zip(judged.query_ids, judged.texts, hybrid, strict=True):
            relevant = {d for d, grade in judged.judged.qrels[query_id].items() if grade > 0}
            positives: dict[str, str] = {}
            for chunk_id, _ in ranking:
                doc = retriever.chunk(chunk_id).doc_id
                if doc in relevant and doc not in positives:
                    positives[doc] = chunk_id
            if not positives:
                continue
            titles = {retriever.chunk(c).title for c in positives.values()}
            pool = [
                c
                for c, _ in ranking[:depth]
                if retriever.chunk(c).doc_id not in relevant and retriever.chunk(c).title not in titles
            ]
            drawn = random.Random(f"{seed}:{judged.name}:{query_id}").sample(pool, min(negatives, len(pool)))
            pairs += [TrainingPair(text, retriever.chunk(c).model_input, 1.0) for c in positives.values()]
            pairs += [TrainingPair(text, retriever.chunk(c).model_input, 0.0) for c in drawn]
            used += 1
    return pairs, used


def _per_query_metric(
    judged: JudgedSet, pools: list[Ranking], model: CrossEncoderReranker, batch_cap: int, retriever: Retriever
) -> dict[str, float]:
    reranked = [
        rerank_candidates(t, p, model, batch_cap, retriever)[0]
        for t, p in zip(judged.texts, pools, strict=True)
    ]
    chunk_to_doc = retriever.doc_ids(reranked)
    run = {q: [d for d, _ in r] for q, r in document_run(judged.query_ids, reranked, chunk_to_doc).items()}
    return {q: v[COMPARED_METRIC] for q, v in per_query(run, judged.judged.qrels, [COMPARED_METRIC]).items()}


def compare_with_base(
    ctx: StageContext,
    sets: Sequence[JudgedSet],
    retriever: Retriever,
    base: CrossEncoderReranker,
    candidate: CrossEncoderReranker,
    batch_cap: int,
    min_noise: float,
) -> list[SetComparison]:
    """Both models rerank the same pools (each dev query's default hybrid top) → per-set comparison."""
    fusion = FusionConfig()
    progress = Progress(
        f"adaptation {ctx.key} dev comparison", 2 * sum(len(s.query_ids) for s in sets), ctx.log.info
    )
    out = []
    for judged in sets:
        hybrid = retriever.first_stage(judged.texts, fusion.depth, fusion)["hybrid"] if judged.texts else []
        pools = [ranking[: fusion.rerank_depth] for ranking in hybrid]
        scores = []
        for model in (base, candidate):
            scores.append(_per_query_metric(judged, pools, model, batch_cap, retriever))
            progress.advance(len(pools))
        out.append(compare_on_set(judged.name, COMPARED_METRIC, scores[0], scores[1], min_noise))
    progress.close()
    return out


def _inputs_digest(
    ctx: StageContext, retriever: Retriever, options: AdaptationOptions, pairs: list[TrainingPair]
) -> str:
    pairs_digest = hashlib.sha256(
        canonical_json([[p.query, p.passage, p.label] for p in pairs]).encode()
    ).hexdigest()
    payload = {
        "code": ADAPTATION_CODE_VERSION,
        "chunk_version": retriever.chunk_version,
        "profile": canonical_json(ctx.require_profile().model_dump(mode="json")),
        "options": options.model_dump(mode="json"),
        "pairs": pairs_digest,
        "eval": eval_files_digest(ctx),
    }
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()[:16]


def adapt_reranker(
    ctx: StageContext,
    options: AdaptationOptions,
    dense_encoder: DenseEncoders,
    sparse_encoder: SparseEncoders,
    reranker: Rerankers,
    lucene: LuceneIndexes,
) -> AdaptationReport:
    """Mine, fine-tune within the budget, compare on every dev set, record which model is used."""
    profile = ctx.require_profile()
    target = ctx.layout.adaptation_record(ctx.namespace_name, profile.name)
    previous = load_record(ctx)

    def finish(
        reason: str,
        inputs: str = "",
        training: dict[str, float | int | str] | None = None,
        comparisons: Sequence[SetComparison] = (),
        candidate: str | None = None,
        adopted: bool = False,
    ) -> AdaptationReport:
        # The record is the latest candidate's: a skipped or losing one leaves the base in use.
        record = AdaptationRecord(
            base_model=profile.reranker.model,
            candidate=candidate,
            adopted=candidate if adopted else None,
            reason=reason,
            training=training or {},
            comparisons=list(comparisons),
            inputs_digest=inputs,
        )
        atomic_write_json(target, record.model_dump(mode="json"))
        ctx.log.info(
            f"{ctx.key}: {'adopted ' + candidate if adopted and candidate else 'base kept'}: {reason}"
        )
        return AdaptationReport(record=record, rebuilt=True, path=str(target))

    if not options.enabled:
        return finish("adaptation disabled (run config `enabled: false`): the base is used")
    if not ctx.settings.enable_rerank:
        return finish(f"{RERANK_DISABLED_WARNING}: no reranker to adapt")
    try:
        retriever = open_retriever(ctx, dense_encoder, sparse_encoder, lucene)
        train = train_sets(ctx, retriever.documents_present, options.max_train_queries, options.seed)
        dev = [s for s in dev_sets(ctx, retriever.documents_present) if s.query_ids]
    except ArtefactSetError as error:
        raise StageError(f"reranker not adapted: {error}") from error
    except ValueError as error:
        raise StageError(f"{ctx.where}: {error}") from error
    if not train:
        return finish(
            "no train judgments (`train_qrels` in the eval sets): nothing to adapt, the base is used"
        )
    pairs, queries_used = mine_training_pairs(
        train, retriever, options.negatives_per_query, options.mining_depth, options.seed
    )
    if not pairs:
        return finish("no train query has a judged answer in its hybrid top 100: the base is used")
    inputs = _inputs_digest(ctx, retriever, options, pairs)
    store = ctx.layout.adapted_rerankers(
        ctx.namespace_name, profile.name, previous.adopted if previous else None
    )
    if (
        previous is not None
        and previous.inputs_digest == inputs
        and (previous.candidate is None or store.version(previous.candidate).is_dir())
    ):
        ctx.log.info(f"{ctx.key}: inputs unchanged; adaptation kept ({previous.reason})")
        return AdaptationReport(record=previous, rebuilt=False, path=str(target))
    try:
        base = reranker.open(profile, ctx.settings.models_dir)
    except RerankerUnavailableError as error:
        raise StageError(f"{ctx.where}: the base reranker cannot be loaded: {error}") from error
    base_location = resolve_model(profile.reranker.model, ctx.settings.models_dir).location
    ctx.log.info(
        f"{ctx.key}: fine-tuning {profile.reranker.model} on {len(pairs)} pairs "
        f"from {queries_used} train queries"
    )
    with store.build() as scratch:
        result = fine_tune_cross_encoder(
            base_location,
            pairs,
            options.budget,
            profile.reranker.max_length,
            scratch,
            base.device,
            ctx.log.info,
        )
    candidate = store.require_current("adapted reranker")
    training: dict[str, float | int | str] = {
        "train_queries": queries_used,
        "pairs": len(pairs),
        "steps": result.steps,
        "pairs_seen": result.pairs_seen,
        "seconds": result.seconds,
        "pairs_per_second": round(result.pairs_per_second, 2),
        "final_loss": result.final_loss,
        "stopped_by": result.stopped_by,
    }
    adapted = reranker.open(with_reranker(profile, candidate), ctx.settings.models_dir)
    comparisons = compare_with_base(ctx, dev, retriever, base, adapted, reranker.batch_cap, options.min_noise)
    verdict = judge_adaptation(comparisons)
    return finish(verdict.reason, inputs, training, comparisons, candidate.name, verdict.adopted)


def check_adaptation(ctx: StageContext) -> CheckOutcome:
    """Adapted vs base on every dev set, judged again from the stored comparison: passes when the
    adapted model is in use or there was nothing to adapt; a candidate that lost fails with WARN
    (the profile keeps its base, so the release goes on); a record claiming an adoption its own
    comparison does not support fails with ERROR."""
    record = load_record(ctx)
    if record is None:
        return CheckOutcome(
            passed=False, description="no adaptation record: materialise adapted_reranker", metadata={}
        )
    verdict = judge_adaptation(record.comparisons)
    metadata: Metadata = {
        "in_use": record.adopted or "base",
        "candidate": record.candidate or "none",
        **{f"{c.name}_{c.metric}_delta": c.delta for c in record.comparisons},
    }
    if record.adopted is not None and not verdict.adopted:
        return CheckOutcome(
            passed=False,
            description=f"adaptation record says {record.adopted} is adopted, but: {verdict.reason}",
            metadata=metadata,
        )
    if record.candidate is not None and record.adopted is None:
        return CheckOutcome(
            passed=False, severity="warn", description=f"refused: {record.reason}", metadata=metadata
        )
    return CheckOutcome(passed=True, description=record.reason, metadata=metadata)
