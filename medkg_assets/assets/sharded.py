"""Per-shard fan-out for the encoding stages: one graph-backed asset, one Dagster step per shard.

Why dynamic mapping inside a graph-backed asset: each shard is its own step, so the executor
decides where it runs (a subprocess under the multiprocess executor, bounded by `max_concurrent`
and the `gpu` pool; one pod per step under dagster-k8s's `k8s_job_executor`), a RetryPolicy
retries a failed shard alone, and the UI's "re-execute from failure" reruns only the failed
shards — while the asset graph, its partitions, checks and lineage stay exactly as before.

  plan (one step)  ──► shard step × N (GPU pool, retried alone) ──► publish (one step)

The plan lists the shards with the durable key of each one's output; a shard step encodes one
shard (or finds it finished by an earlier, crashed run) and saves it; publish turns the finished
shards into one artefact version and returns the stage report as materialisation metadata.
"""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from dagster import (
    AssetIn,
    AssetsDefinition,
    Backoff,
    ConfigMapping,
    DynamicOut,
    DynamicOutput,
    In,
    Nothing,
    OpExecutionContext,
    Out,
    Output,
    RetryPolicy,
    graph_asset,
    op,
)

from medkg_assets.assets.context import (
    failures_reported,
    guard_access,
    namespace_mapping,
    run_stage,
    stage_context,
    stage_errors_as_failures,
)
from medkg_assets.orchestration.partitions import Partitions
from medkg_assets.settings import Settings
from medkg_assets.stages.context import StageContext
from medkg_assets.stages.reports import Report
from medkg_assets.stages.sharded import ShardOutcome, ShardPlan, ShardTask
from medkg_assets.tenancy import EMBED_SCOPE
from medkg_assets.topology import GPU_POOL, GPU_STAGE_TAG

# A preempted pod or a transient device error costs one shard, retried alone.
SHARD_RETRY = RetryPolicy(max_retries=2, delay=5, backoff=Backoff.EXPONENTIAL)


@dataclass(frozen=True)
class ShardWork:
    """One shard step's input: the partition it belongs to and its task (picklable)."""

    partition_key: str
    task: ShardTask


@dataclass(frozen=True)
class ShardedStage:
    """What distinguishes one sharded stage from another: names, resource and stage functions.

    `plan` returns a ShardPlan, or a finished Report when there is nothing to fan out (a disabled
    stage), which publish then returns as the stage's metadata.
    """

    asset: str  # the asset key, e.g. dense_embeddings
    stage: str  # telemetry stage name
    provider: str
    resource: str  # resource key of the encoder
    gpu_tag: str
    report_type: type[Report]
    plan: Callable[[StageContext, Any, Any], ShardPlan | Report]  # (ctx, encoder resource, op config)
    encode: Callable[[StageContext, Any, ShardTask], ShardOutcome]
    publish: Callable[[StageContext, ShardPlan, Sequence[ShardOutcome]], Report]

    @property
    def shard_op(self) -> str:
        return f"{self.asset}_shard"


def mapping_key(position: int, partitions: int, task: ShardTask) -> str:
    """`shard_00003`, or `p1_shard_00003` in a run holding several partitions."""
    name = task.name.replace("-", "_")
    return name if partitions == 1 else f"p{position}_{name}"


def sharded_asset(
    settings: Settings,
    partitions: Partitions,
    spec: ShardedStage,
    *,
    group_name: str,
    kinds: set[str],
    code_version: str,
    description: str,
    config: ConfigMapping | None = None,
) -> AssetsDefinition:
    """The stage as a graph-backed asset of three ops (plan → shard × N → publish), after `chunks`."""

    @op(
        name=f"{spec.asset}_plan",
        ins={"chunks": In(Nothing)},
        out={"tasks": DynamicOut(ShardWork), "plans": Out(dict)},
        required_resource_keys={"telemetry", spec.resource},
        config_schema=config.config_schema if config is not None else None,
    )
    def plan_op(context: OpExecutionContext) -> Iterator[Output[Any] | DynamicOutput[ShardWork]]:
        keys = [str(k) for k in context.partition_keys]
        telemetry = context.resources.telemetry
        guard_access(context, settings, telemetry, keys, EMBED_SCOPE)
        resource = getattr(context.resources, spec.resource)
        plans: dict[str, dict[str, Any]] = {}
        for position, key in enumerate(keys):
            with failures_reported(context, settings, telemetry, key, spec.stage, spec.provider):
                with stage_errors_as_failures():
                    planned = spec.plan(stage_context(context, settings, key), resource, context.op_config)
            if isinstance(planned, Report):
                plans[key] = {"report": planned.model_dump(mode="json")}
                continue
            plans[key] = {"plan": planned.model_dump(mode="json")}
            for task in planned.pending:  # finished shards get no step (no pod): publish keeps them
                yield DynamicOutput(
                    ShardWork(key, task),
                    mapping_key=mapping_key(position, len(keys), task),
                    output_name="tasks",
                )
        yield Output(plans, output_name="plans")

    @op(
        name=spec.shard_op,
        required_resource_keys={"telemetry", spec.resource},
        pool=GPU_POOL,
        tags={GPU_STAGE_TAG: spec.gpu_tag},
        retry_policy=SHARD_RETRY,
    )
    def shard_op(context: OpExecutionContext, work: ShardWork) -> dict[str, Any]:
        ctx = stage_context(context, settings, work.partition_key)
        telemetry = context.resources.telemetry
        with failures_reported(context, settings, telemetry, work.partition_key, spec.stage, spec.provider):
            with stage_errors_as_failures(allow_retries=False):
                outcome = spec.encode(ctx, getattr(context.resources, spec.resource), work.task)
        return {"partition_key": work.partition_key, "outcome": outcome.model_dump(mode="json")}

    @op(name=f"{spec.asset}_publish", out=Out(Nothing), required_resource_keys={"telemetry"})
    def publish_op(
        context: OpExecutionContext, plans: dict[str, Any], done: list[dict[str, Any]]
    ) -> Output[None]:
        by_key: dict[str, list[ShardOutcome]] = {}
        for item in done:
            by_key.setdefault(item["partition_key"], []).append(ShardOutcome.model_validate(item["outcome"]))

        def publish(ctx: StageContext) -> Report:
            planned = plans[ctx.key]
            if "report" in planned:
                return spec.report_type.model_validate(planned["report"])
            return spec.publish(ctx, ShardPlan.model_validate(planned["plan"]), by_key.get(ctx.key, []))

        telemetry = context.resources.telemetry
        result = run_stage(context, settings, telemetry, spec.stage, spec.provider, publish)
        return Output(None, metadata=result.metadata, data_version=result.data_version)

    @graph_asset(
        name=spec.asset,
        ins={"chunks": AssetIn("chunks", partition_mapping=namespace_mapping(), dagster_type=Nothing)},
        partitions_def=partitions.namespace_profile,
        backfill_policy=partitions.backfill_policy,
        group_name=group_name,
        kinds=kinds,
        code_version=code_version,
        description=description,
        config=config,
    )
    def graph(chunks: Any) -> Any:
        tasks, plans = plan_op(chunks)
        return publish_op(plans, tasks.map(shard_op).collect())

    return graph
