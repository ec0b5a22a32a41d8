"""The shape every per-chunk stage shares: plan the shards, encode each alone, publish them together.

`plan_shards` lists the current chunk version's shards with the key each one's output is stored
under; `run_shard` encodes one (or finds it finished: resume) and saves it durably; `publish`
turns the finished shards into one artefact version. In Dagster each shard is its own step
(assets/sharded.py); without Dagster `run_all_shards` runs them one after another in-process.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from medkg_assets.config import EmbeddingProfile
from medkg_assets.encoders.errors import EncoderError
from medkg_assets.stages.context import StageContext
from medkg_assets.stages.ingest import budget_key, chunk_shards, current_chunk_version, shard_chunks
from medkg_assets.stages.reports import StageError
from medkg_assets.storage.shards import ShardEntry, ShardError, ShardManifest, output_key
from medkg_assets.text.chunking import Chunk
from medkg_assets.vectors.incremental import IncrementalResult
from medkg_assets.vectors.shard_outputs import ShardOutputs


class ShardTask(BaseModel):
    """What one shard step encodes: small and picklable (it travels between Dagster steps)."""

    model_config = ConfigDict(frozen=True)

    chunk_version: str
    chunk_shard: ShardEntry
    key: str
    position: int  # 1-based, for "shard 3/8" in logs
    total: int
    finished: bool  # its output was already on disk when the plan was made

    @property
    def name(self) -> str:
        return self.chunk_shard.name


class ShardPlan(BaseModel):
    chunk_version: str
    cache_key: str
    shard_count: int
    max_chunks_per_shard: int
    tasks: list[ShardTask]

    @property
    def finished(self) -> int:
        return sum(t.finished for t in self.tasks)

    @property
    def pending(self) -> list[ShardTask]:
        """The shards a step must encode (the others' outputs were on disk at planning)."""
        return [t for t in self.tasks if not t.finished]


class ShardOutcome(BaseModel):
    """What one shard step did; the publish step sums these into the stage's report."""

    shard: str
    key: str
    rows: int
    kept: bool = False  # its output was on disk (an unchanged shard, or one finished before a crash)
    encoded: int = 0  # distinct texts encoded
    cache_hits: int = 0  # rows reused from the previous version's shard
    seconds: float = 0.0
    device: str = "none"
    provider: str = "cache"
    batch_sizes: list[int] = []
    over_budget: int = 0
    resplit: int = 0
    rejected: int = 0


# Encodes one shard's chunks (the profile's budgeted view) into its output table.
EncodeShard = Callable[[ShardTask, list[Chunk]], tuple[pa.Table, IncrementalResult]]


def plan_shards(ctx: StageContext, outputs: ShardOutputs, cache_key: str, stage: str) -> ShardPlan:
    """The current chunk version's shards and the durable key of each one's output."""
    profile = ctx.require_profile()
    chunk_version = current_chunk_version(ctx.layout, ctx.namespace_name)
    try:
        manifest = chunk_shards(ctx, chunk_version)
    except ShardError as error:
        raise StageError(f"{ctx.where}: {error}") from error
    keyed = f"{cache_key}:{budget_key(ctx, profile)}"
    tasks = []
    for position, entry in enumerate(manifest.shards, start=1):
        key = output_key(entry.digest, keyed)
        tasks.append(
            ShardTask(
                chunk_version=chunk_version,
                chunk_shard=entry,
                key=key,
                position=position,
                total=len(manifest.shards),
                finished=outputs.finished_rows(key) is not None,
            )
        )
    plan = ShardPlan(
        chunk_version=chunk_version,
        cache_key=cache_key,
        shard_count=manifest.shard_count,
        max_chunks_per_shard=manifest.max_chunks_per_shard,
        tasks=tasks,
    )
    ctx.log.info(
        f"{stage} {ctx.where}: {len(tasks)} shard(s) of ≤ {manifest.max_chunks_per_shard} chunks, "
        f"{manifest.rows} chunks; {plan.finished} already finished (kept), "
        f"{len(tasks) - plan.finished} to encode"
    )
    return plan


def run_shard(
    ctx: StageContext,
    outputs: ShardOutputs,
    task: ShardTask,
    encode: EncodeShard,
    profile: EmbeddingProfile,
    stage: str,
) -> ShardOutcome:
    """Encode one shard and save it durably, unless a finished output is already on disk."""
    rows = outputs.finished_rows(task.key)
    if rows is not None:
        ctx.log.info(
            f"{stage} {ctx.where} {task.name} ({task.position}/{task.total}): finished earlier, kept"
        )
        return ShardOutcome(shard=task.name, key=task.key, rows=rows, kept=True)
    started = time.perf_counter()
    try:
        budget = shard_chunks(ctx, task.chunk_version, task.chunk_shard, profile)
    except ShardError as error:
        raise StageError(f"{ctx.where} {task.name}: {error}") from error
    except EncoderError as error:  # the profile's tokenizer could not be loaded
        raise StageError.wrap(f"{ctx.where} {task.name}", error) from error
    ctx.log.info(
        f"{stage} {ctx.where} {task.name} ({task.position}/{task.total}): {len(budget.chunks)} chunks"
    )
    table, result = encode(task, budget.chunks)
    outputs.save(task.key, table)
    return ShardOutcome(
        shard=task.name,
        key=task.key,
        rows=table.num_rows,
        encoded=result.encoded,
        cache_hits=result.plan.hits,
        seconds=round(time.perf_counter() - started, 3),
        device=result.device,
        provider=result.provider,
        batch_sizes=list(result.batch_sizes),
        over_budget=budget.over_budget,
        resplit=budget.resplit,
        rejected=len(budget.rejected),
    )


def run_pending(
    ctx: StageContext, plan: ShardPlan, run_one: Callable[[ShardTask], ShardOutcome], stage: str
) -> list[ShardOutcome]:
    """Every shard to encode, in turn, in this process (the CLI, benchmarks; Dagster runs a step
    each), with counts, rate and ETA across shards; finished shards are left to `with_kept_shards`."""
    started, done, outcomes = time.perf_counter(), 0, []
    pending_rows = sum(t.chunk_shard.rows for t in plan.pending)
    for number, task in enumerate(plan.pending, start=1):
        outcomes.append(run_one(task))
        done += task.chunk_shard.rows
        elapsed = time.perf_counter() - started
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (pending_rows - done) / rate if rate else 0.0
        ctx.log.info(
            f"{stage} {ctx.where}: {number}/{len(plan.pending)} shards to encode done, "
            f"{done}/{pending_rows} chunks, {rate:.1f} chunks/s, ETA {eta:.0f}s"
        )
    return outcomes


def with_kept_shards(
    outputs: ShardOutputs, plan: ShardPlan, outcomes: Sequence[ShardOutcome]
) -> list[ShardOutcome]:
    """The outcomes of the encoded shards plus one for every shard the plan found finished (no
    step was spent on those: a rerun after a 1 % change starts a step, or a pod, per changed shard)."""
    done = {o.shard for o in outcomes}
    kept = []
    for task in plan.tasks:
        if task.name in done or not task.finished:
            continue
        rows = outputs.finished_rows(task.key)
        if rows is None:
            raise ShardError(
                f"{task.name} (output {outputs.path(task.key)}) was finished when the stage was planned "
                "and is now missing or unreadable; rerun the stage: that shard is encoded again"
            )
        kept.append(ShardOutcome(shard=task.name, key=task.key, rows=rows, kept=True))
    return [*outcomes, *kept]


def publish_shards(
    outputs: ShardOutputs, plan: ShardPlan, outcomes: Sequence[ShardOutcome], meta: dict[str, object]
) -> ShardManifest:
    """Publish the finished shards as one version; every planned shard must have its outcome."""
    by_name = {o.shard: o for o in outcomes}
    missing = [t.name for t in plan.tasks if t.name not in by_name]
    if missing:
        raise ShardError(f"shards {', '.join(missing)} have no finished output; rerun the stage")
    manifest = ShardManifest(
        shard_count=plan.shard_count,
        max_chunks_per_shard=plan.max_chunks_per_shard,
        shards=[
            ShardEntry(name=t.name, rows=by_name[t.name].rows, digest=t.chunk_shard.digest, key=t.key)
            for t in plan.tasks
        ],
    )
    outputs.publish(manifest, {**meta, "chunk_version": plan.chunk_version, "count": manifest.rows})
    return manifest


def summed(outcomes: Sequence[ShardOutcome]) -> dict[str, int]:
    """Totals over shards, for the stage report."""
    return {
        "rows": sum(o.rows for o in outcomes),
        "encoded": sum(o.encoded for o in outcomes),
        "cache_hits": sum(o.cache_hits for o in outcomes),
        "kept": sum(o.kept for o in outcomes),
        "over_budget": sum(o.over_budget for o in outcomes),
        "resplit": sum(o.resplit for o in outcomes),
        "rejected": sum(o.rejected for o in outcomes),
    }
