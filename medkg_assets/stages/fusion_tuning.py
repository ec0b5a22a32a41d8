"""Fusion tuning stage (per namespace × profile): fit RRF k, per-system weights, fusion depth,
rerank depth and the reranker/fused blend on the namespace's train judgments, then select the
final stage on its dev sets, and store them as `fusion.json` for the rerank manifest and
`medkg eval`. Without train judgments the robust defaults stay; without dev sets, so does the
final stage. Nothing is fitted to dev: it only chooses among the stages the train fit produced.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel

from medkg_assets.encoders.rerank import CrossEncoderReranker
from medkg_assets.evaluation.tuning import (
    OBJECTIVE,
    FusionGrid,
    JudgedRuns,
    select_final_stage,
    tune_fusion_settings,
    tune_rerank_settings,
)
from medkg_assets.progress import Progress
from medkg_assets.search.fusion import FinalStage, FusionConfig
from medkg_assets.search.retrieval import Retriever
from medkg_assets.stages.context import StageContext
from medkg_assets.stages.dense import DenseEncoders
from medkg_assets.stages.judged_sets import JudgedSet, dev_sets, train_sets
from medkg_assets.stages.lucene import LuceneIndexes
from medkg_assets.stages.reader import (
    Rerankers,
    indexes_digest,
    open_reranker,
    open_retriever,
    reranker_scores,
)
from medkg_assets.stages.reports import JsonValue, Metadata, Report, StageError, markdown_table, path_value
from medkg_assets.stages.sparse import SparseEncoders
from medkg_assets.storage.atomic import atomic_write_json, canonical_json, read_json_or
from medkg_assets.storage.pinning import ArtefactSetError

FUSION_CODE_VERSION = "fusion-1"


_GRID = FusionGrid()


class TuningOptions(BaseModel):
    """`enable_rerank` unset follows EMBEDDER_ENABLE_RERANK; train sets are sampled to
    `max_train_queries` queries each with `seed`; the `*_grid` lists are the settings tried (flat
    fields, so the asset's run config takes them)."""

    enable_rerank: bool | None = None
    max_train_queries: int = 300
    seed: int = 13
    rrf_k_grid: list[int] = _GRID.rrf_k
    weight_grid: list[float] = _GRID.weights
    depth_grid: list[int] = _GRID.depth
    rerank_depth_grid: list[int] = _GRID.rerank_depth
    rerank_weight_grid: list[float] = _GRID.rerank_weight

    @property
    def grid(self) -> FusionGrid:
        return FusionGrid(
            rrf_k=self.rrf_k_grid,
            weights=self.weight_grid,
            depth=self.depth_grid,
            rerank_depth=self.rerank_depth_grid,
            rerank_weight=self.rerank_weight_grid,
        )


class FusionReport(Report):
    fusion: FusionConfig
    tuned_on: dict[str, int]  # train set → queries
    selected_on: dict[str, int]  # dev set → queries
    train: dict[str, float]  # default vs tuned OBJECTIVE on train, fusion and rerank
    dev: dict[str, dict[str, float]]  # dev set → stage → OBJECTIVE
    reason: str
    below_best_single: list[str]
    settings_tried: int
    inputs_digest: str
    rebuilt: bool
    warnings: list[str]
    path: str

    def to_metadata(self) -> Metadata:
        fusion = self.fusion
        settings: list[list[object]] = [
            ["RRF k", fusion.rrf_k],
            ["weights", ", ".join(f"{k} {v:g}" for k, v in fusion.weights.items())],
            ["fusion depth", fusion.depth],
            ["rerank depth", fusion.rerank_depth],
            ["rerank weight", fusion.rerank_weight],
            ["final stage", fusion.final_stage],
        ]
        stages = sorted({st for per in self.dev.values() for st in per})
        dev_rows = [[st, *(f"{self.dev[n].get(st, 0.0):.4f}" for n in self.dev)] for st in stages]
        return {
            "final_stage": fusion.final_stage,
            "settings": markdown_table(["setting", "value"], settings),
            f"dev_{OBJECTIVE}": markdown_table(["stage", *self.dev], dev_rows) if self.dev else "no dev set",
            f"train_{OBJECTIVE}": markdown_table(
                ["what", OBJECTIVE], [[k, f"{v:.4f}"] for k, v in self.train.items()]
            )
            if self.train
            else "no train judgments: defaults",
            "tuned_on": JsonValue(self.tuned_on),
            "selected_on": JsonValue(self.selected_on),
            "reason": self.reason,
            "below_best_single": JsonValue(self.below_best_single),
            "settings_tried": self.settings_tried,
            "rebuilt": self.rebuilt,
            "warnings": JsonValue(self.warnings),
            "path": path_value(self.path),
        }


def load_fusion(ctx: StageContext) -> FusionConfig:
    """The partition's tuned fusion settings, or the defaults before `fusion_config` ran."""
    stored = read_json_or(ctx.layout.fusion_config(ctx.namespace_name, ctx.require_profile().name), None)
    return FusionConfig.model_validate(stored["fusion"]) if stored else FusionConfig()


def _judged_runs(judged: JudgedSet, retriever: Retriever, depth: int) -> JudgedRuns:
    runs = retriever.first_stage(judged.texts, depth) if judged.texts else {}
    systems = {name: rankings for name, rankings in runs.items() if name != "hybrid"}
    return JudgedRuns(
        name=judged.name,
        query_ids=judged.query_ids,
        qrels=judged.judged.qrels,
        runs=systems,
        chunk_to_doc=retriever.doc_ids(r for rankings in systems.values() for r in rankings),
    )


def _score_pools(
    ctx: StageContext,
    sets: Sequence[tuple[JudgedSet, JudgedRuns]],
    fusion: FusionConfig,
    depth: int,
    model: CrossEncoderReranker,
    batch_cap: int,
    retriever: Retriever,
) -> None:
    """Each query's fused top `depth` and its CrossEncoder scores, into its JudgedRuns."""
    progress = Progress(
        f"fusion {ctx.key} rerank pools", sum(len(j.query_ids) for j, _ in sets), ctx.log.info
    )
    for judged, runs in sets:
        runs.pools = [ranking[:depth] for ranking in runs.fused(fusion)]
        runs.pool_scores = []
        for text, pool in zip(judged.texts, runs.pools, strict=True):
            runs.pool_scores.append(reranker_scores(text, pool, model, batch_cap, retriever)[0])
            progress.advance(1)
    progress.close()


@dataclass(frozen=True)
class FusionFit:
    fusion: FusionConfig
    train: dict[str, float]  # default vs tuned OBJECTIVE on train, fusion and rerank
    dev: dict[str, dict[str, float]]  # dev set → stage → OBJECTIVE
    reason: str
    below_best_single: list[str]
    settings_tried: int


def fit_fusion(
    ctx: StageContext,
    retriever: Retriever,
    train: Sequence[JudgedSet],
    dev: Sequence[JudgedSet],
    grid: FusionGrid,
    model: CrossEncoderReranker | None,
    batch_cap: int,
) -> FusionFit:
    """Fusion, then rerank settings fitted on `train` (with `model`'s scores), the final stage
    selected on `dev`: the defaults where there is nothing to fit on."""
    fusion = FusionConfig()
    depth = max([*grid.depth, fusion.depth])
    train_runs = [(s, _judged_runs(s, retriever, depth)) for s in train]
    dev_runs = [(s, _judged_runs(s, retriever, depth)) for s in dev]
    train_figures: dict[str, float] = {}
    tried = 0
    if train_runs:
        tuned = tune_fusion_settings([r for _, r in train_runs], grid, fusion)
        fusion, tried = tuned.fusion, tuned.settings_tried
        train_figures.update(fusion_default=tuned.default_score, fusion_tuned=tuned.train_score)
        ctx.log.info(
            f"{ctx.key}: fusion tuned on train ({tried} settings): {OBJECTIVE} {tuned.train_score:.4f}"
        )
    if model is not None:
        pool_depth = max(grid.rerank_depth) if train_runs else fusion.rerank_depth
        _score_pools(ctx, train_runs + dev_runs, fusion, pool_depth, model, batch_cap, retriever)
        if train_runs:
            tuned = tune_rerank_settings([r for _, r in train_runs], grid, fusion)
            fusion, tried = tuned.fusion, tried + tuned.settings_tried
            train_figures.update(rerank_default=tuned.default_score, rerank_tuned=tuned.train_score)
    stages: list[FinalStage] = ["dense", "sparse", "bm25"] if retriever.has_sparse else ["dense", "bm25"]
    stages += ["hybrid", "reranked"] if model is not None else ["hybrid"]
    if not dev_runs:
        final = fusion.model_copy(update={"final_stage": stages[-1]})
        return FusionFit(final, train_figures, {}, f"{stages[-1]}: no dev set to select on", [], tried)
    selection = select_final_stage([r for _, r in dev_runs], fusion, stages)
    fusion = fusion.model_copy(update={"final_stage": selection.final_stage})
    return FusionFit(
        fusion, train_figures, selection.dev_scores, selection.reason, selection.below_best_single, tried
    )


def _inputs_digest(ctx: StageContext, retriever: Retriever, options: TuningOptions, rerank: bool) -> str:
    payload = {
        "code": FUSION_CODE_VERSION,
        **indexes_digest(ctx, retriever),
        "options": options.model_dump(mode="json"),
        "rerank": rerank,
    }
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()[:16]


def tune_fusion(
    ctx: StageContext,
    options: TuningOptions,
    dense_encoder: DenseEncoders,
    sparse_encoder: SparseEncoders,
    reranker: Rerankers,
    lucene: LuceneIndexes,
) -> FusionReport:
    """Fit on train, select on dev, write `fusion.json`; unchanged inputs keep the stored one."""
    profile = ctx.require_profile()
    try:
        retriever = open_retriever(ctx, dense_encoder, sparse_encoder, lucene)
    except ArtefactSetError as error:
        raise StageError(f"fusion settings not tuned: {error}") from error
    enable_rerank = ctx.settings.enable_rerank if options.enable_rerank is None else options.enable_rerank
    target = ctx.layout.fusion_config(ctx.namespace_name, profile.name)
    inputs = _inputs_digest(ctx, retriever, options, enable_rerank)
    stored = read_json_or(target, None)
    if stored and stored.get("report", {}).get("inputs_digest") == inputs:
        ctx.log.info(f"{ctx.key}: inputs unchanged; fusion settings kept")
        return FusionReport.model_validate({**stored["report"], "rebuilt": False})
    try:
        dev = dev_sets(ctx, retriever.documents_present)
        train = train_sets(ctx, retriever.documents_present, options.max_train_queries, options.seed)
    except ValueError as error:
        raise StageError(f"{ctx.where}: {error}") from error
    warnings: list[str] = []
    if not train:
        warnings.append("no train judgments (`train_qrels` in the eval sets): fusion defaults kept")
    dev = [s for s in dev if s.query_ids]
    model = open_reranker(ctx, reranker, enable_rerank, bool(train or dev), warnings)
    fit = fit_fusion(ctx, retriever, train, dev, options.grid, model, reranker.batch_cap)
    fusion = fit.fusion
    for warning in warnings:
        ctx.log.warning(f"{ctx.key}: {warning}")
    report = FusionReport(
        fusion=fusion,
        tuned_on={s.name: len(s.query_ids) for s in train},
        selected_on={s.name: len(s.query_ids) for s in dev},
        train={k: round(v, 4) for k, v in fit.train.items()},
        dev={n: {st: round(v, 4) for st, v in per.items()} for n, per in fit.dev.items()},
        reason=fit.reason,
        below_best_single=fit.below_best_single,
        settings_tried=fit.settings_tried,
        inputs_digest=inputs,
        rebuilt=True,
        warnings=warnings,
        path=str(target),
    )
    atomic_write_json(
        target, {"fusion": fusion.model_dump(mode="json"), "report": report.model_dump(mode="json")}
    )
    return report
