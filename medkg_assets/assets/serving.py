"""Serving (per namespace): `profile_ab_report` (live vs candidate on every eval set), the
`serving_alias` asset, which promotes a profile through the checks + Recall@10 gate (≤ 5 % drop)
and its expected scores, and `rollback_job`, which points readers back without recomputing."""

from dagster import (
    AssetExecutionContext,
    AssetMaterialization,
    AssetsDefinition,
    Config,
    JobDefinition,
    MaterializeResult,
    OpExecutionContext,
    asset,
    job,
    op,
)

from medkg_assets.assets.context import (
    guard_access,
    per_namespace,
    run_stage,
    stage_context,
    stage_errors_as_failures,
)
from medkg_assets.orchestration.check_status import failing_checks
from medkg_assets.orchestration.metadata import dagster_metadata
from medkg_assets.orchestration.partitions import Partitions
from medkg_assets.resources.opensearch import OpenSearchResource
from medkg_assets.resources.telemetry import TelemetryResource
from medkg_assets.settings import Settings
from medkg_assets.stages.ab_report import build_ab_report
from medkg_assets.stages.context import StageContext
from medkg_assets.stages.serving import ServingReport, promote_profile, roll_back_profile
from medkg_assets.tenancy import PUBLISH_SCOPE
from medkg_assets.topology import SERVING_GROUP


class ServingAliasConfig(Config):
    """`profile` unset: the candidate for namespaces in the rollout set, the baseline otherwise."""

    profile: str | None = None


class RollbackConfig(Config):
    namespace: str


def serving_assets(settings: Settings, partitions: Partitions) -> list[AssetsDefinition]:
    @asset(
        partitions_def=partitions.namespace,
        backfill_policy=partitions.backfill_policy,
        deps=[per_namespace("processing_summary")],
        group_name=SERVING_GROUP,
        kinds={"json"},
        description="The live profile vs the candidate on every eval set (quality per stage, rerank "
        "latency, index bytes, cache ratios) and each against its expected scores.",
    )
    def profile_ab_report(context: AssetExecutionContext, telemetry: TelemetryResource) -> MaterializeResult:
        return run_stage(context, settings, telemetry, "ab_report", "python", build_ab_report)

    @asset(
        partitions_def=partitions.namespace,
        backfill_policy=partitions.backfill_policy,
        deps=[per_namespace("processing_summary"), profile_ab_report],
        group_name=SERVING_GROUP,
        kinds={"json"},
        description="The profile a namespace serves; promotion gated on checks, Recall@10 (≤ 5 % drop) "
        "and the expected scores (value ± tolerance per eval set).",
    )
    def serving_alias(
        context: AssetExecutionContext,
        config: ServingAliasConfig,
        telemetry: TelemetryResource,
        opensearch: OpenSearchResource,
    ) -> MaterializeResult:
        def promote(ctx: StageContext) -> ServingReport:
            target = config.profile or settings.serving_target(ctx.namespace_name)
            return promote_profile(
                ctx, target, lambda: failing_checks(context.instance, ctx.namespace_name, target), opensearch
            )

        provider = "opensearch" if opensearch.configured else "local"
        return run_stage(context, settings, telemetry, "serving", provider, promote, scope=PUBLISH_SCOPE)

    return [profile_ab_report, serving_alias]


def rollback_job_for(settings: Settings) -> JobDefinition:
    @op(description="Make the previous live profile of a namespace live again and flip its readers.")
    def roll_back_serving(
        context: OpExecutionContext,
        config: RollbackConfig,
        telemetry: TelemetryResource,
        opensearch: OpenSearchResource,
    ) -> None:
        namespace = settings.namespace(config.namespace).name
        guard_access(context, settings, telemetry, [namespace], PUBLISH_SCOPE)
        with stage_errors_as_failures():
            report = roll_back_profile(stage_context(context, settings, namespace), opensearch)
        context.log_event(
            AssetMaterialization(
                asset_key="serving_alias",
                partition=namespace,
                metadata=dagster_metadata(report.to_metadata()),
            )
        )

    @job(description="Roll a namespace's serving alias back to its previous profile (config: namespace).")
    def rollback_job() -> None:
        roll_back_serving()

    return rollback_job
