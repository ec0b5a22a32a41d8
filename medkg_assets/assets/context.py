"""The Dagster edge of every asset: partitions → StageContext, access guard, telemetry, metadata.

An asset body builds nothing itself: `run_stage` checks the run's tenant and scopes, builds one
`StageContext` per partition, calls the stage function inside a telemetry batch and turns its
report into a `MaterializeResult`; `check_stage` does the same for checks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any, get_args, get_type_hints

from dagster import (
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    AssetKey,
    AssetRecordsFilter,
    DataVersion,
    Failure,
    MaterializeResult,
    MetadataValue,
    MultiToSingleDimensionPartitionMapping,
    OpExecutionContext,
    Output,
)

from medkg_assets.orchestration.metadata import dagster_metadata
from medkg_assets.orchestration.partitions import NAMESPACE_DIMENSION
from medkg_assets.resources.telemetry import TelemetryResource
from medkg_assets.settings import Settings
from medkg_assets.stages.context import StageContext
from medkg_assets.stages.reports import (
    CheckOutcome,
    Report,
    StageError,
    markdown_table,
)
from medkg_assets.tenancy import EMBED_SCOPE, TenantAccessError, check_access, run_scopes, run_tenant

# Metadata key under which a multi-partition run records each partition's own figures.
PER_PARTITION = "per_partition"


def telemetry_metadata(settings: Settings) -> dict[str, Any]:
    """The start-up telemetry labels, attached to every materialisation."""
    return {
        **{key: MetadataValue.text(value) for key, value in settings.telemetry_labels.items()},
        "environment": MetadataValue.text(settings.environment.name),
    }


def _scalar_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """The plain numbers and strings of a metadata dict (tables and JSON stay per run)."""
    out = {}
    for key, value in metadata.items():
        raw = value.value if isinstance(value, MetadataValue) else value
        if isinstance(raw, bool | int | float | str):
            out[key] = raw
    return out


def split_key(partition_key: str) -> tuple[str, str | None]:
    """(namespace, profile) of a `namespace|profile` key, (namespace, None) of a namespace key."""
    namespace, _, profile = partition_key.partition("|")
    return namespace, profile or None


def stage_context(
    context: AssetExecutionContext | AssetCheckExecutionContext | OpExecutionContext,
    settings: Settings,
    partition_key: str,
) -> StageContext:
    """The partition's StageContext: its tenant and scopes come from the run's tags."""
    namespace_name, profile = split_key(partition_key)
    namespace = settings.namespace(namespace_name)
    tags = context.run.tags
    return StageContext.build(
        settings,
        namespace_name,
        profile,
        run_id=context.run.run_id,
        log=context.log,
        tenant=run_tenant(tags, namespace),
        scopes=frozenset(run_scopes(tags, namespace)),
    )


def guard_access(
    context: AssetExecutionContext | OpExecutionContext,
    settings: Settings,
    telemetry: TelemetryResource,
    keys: list[str],
    scope: str,
) -> None:
    """Refuse the run before any work when its tenant or scopes do not reach every namespace in it."""
    for name in dict.fromkeys(split_key(key)[0] for key in keys):
        namespace = settings.namespace(name)
        tenant = run_tenant(context.run.tags, namespace)
        try:
            check_access(namespace, tenant, run_scopes(context.run.tags, namespace), scope)
        except TenantAccessError as error:
            total = telemetry.count_denied(context.log, name, tenant)
            context.log.error(
                f"cross-tenant attempt refused: tenant={tenant} namespace={name} "
                f"run_id={context.run.run_id} scope={scope} (attempt {total})"
            )
            raise Failure(
                description=str(error),
                metadata={"tenant": tenant, "namespace": name, "run_id": context.run.run_id, "scope": scope},
            ) from error


@contextmanager
def stage_errors_as_failures(allow_retries: bool = True) -> Iterator[None]:
    """Turn a `StageError` into the step's `Failure` with the same description and metadata; the
    error under it stays the cause, which telemetry and alerts record as the error type.
    `allow_retries=False` keeps a step's RetryPolicy from repeating an error that would recur
    (bad input, wrong dims); crashes and other exceptions are still retried."""
    try:
        yield
    except StageError as error:
        failure = Failure(
            description=error.description,
            metadata=dagster_metadata(error.metadata),
            allow_retries=allow_retries,
        )
        raise failure from (error.__cause__ or error)


@contextmanager
def failures_reported(
    context: OpExecutionContext,
    settings: Settings,
    telemetry: TelemetryResource,
    partition_key: str,
    stage: str,
    provider: str,
) -> Iterator[None]:
    """For a step that is part of a stage but not its telemetry batch (a shard plan or a shard
    step, whose publish step records the batch): its failure is still a `failed` stage event and
    an error-type count, as if the stage had run in one step."""
    try:
        yield
    except Exception:
        stage_ctx = stage_context(context, settings, partition_key)
        profile = stage_ctx.profile.name if stage_ctx.profile else "-"
        run_id = context.run.run_id
        with telemetry.stage_batch(
            context.log, run_id, stage_ctx.namespace_name, stage_ctx.tenant, profile, stage, provider
        ):
            raise


def materialize_result(settings: Settings, report: Report) -> MaterializeResult:
    version = report.data_version
    return MaterializeResult(
        metadata={**dagster_metadata(report.to_metadata()), **telemetry_metadata(settings)},
        data_version=DataVersion(version) if version else None,
    )


def run_stage(
    context: AssetExecutionContext,
    settings: Settings,
    telemetry: TelemetryResource,
    stage: str,
    provider: str,
    run_one: Callable[[StageContext], Report],
    scope: str = EMBED_SCOPE,
) -> MaterializeResult:
    """Check access, then run the stage for every partition of the run, each as one telemetry batch.

    A run holds one partition unless the BackfillPolicy groups several into one run; then Dagster
    records one materialisation per partition from a single result, so each partition's own
    figures travel under `per_partition` (a JSON table in the UI) beside a Markdown summary.
    """
    keys = [str(key) for key in context.partition_keys]
    guard_access(context, settings, telemetry, keys, scope)

    def build(key: str) -> MaterializeResult:
        stage_ctx = stage_context(context, settings, key)
        profile = stage_ctx.profile.name if stage_ctx.profile else "-"
        with telemetry.stage_batch(
            context.log,
            context.run.run_id,
            stage_ctx.namespace_name,
            stage_ctx.tenant,
            profile,
            stage,
            provider,
        ) as batch:
            with stage_errors_as_failures():
                report = run_one(stage_ctx)
            batch.update_from(report.figures(), provider)
        return materialize_result(settings, report)

    if len(keys) == 1:
        return build(keys[0])
    figures = {}
    for position, key in enumerate(keys, start=1):
        context.log.info(f"partition {position}/{len(keys)}: {key}")
        figures[key] = _scalar_metadata(build(key).metadata or {})
    columns = sorted({name for values in figures.values() for name in values if name != "path"})[:8]
    return MaterializeResult(
        metadata={
            "partitions": len(keys),
            PER_PARTITION: MetadataValue.json(figures),
            "summary": MetadataValue.md(
                markdown_table(
                    ["partition", *columns],
                    [[key, *(v.get(c, "") for c in columns)] for key, v in figures.items()],
                )
            ),
        }
    )


def check_result(outcome: CheckOutcome) -> AssetCheckResult:
    return AssetCheckResult(
        passed=outcome.passed,
        description=outcome.description,
        metadata=dagster_metadata(outcome.metadata),
        severity=AssetCheckSeverity.WARN if outcome.severity == "warn" else AssetCheckSeverity.ERROR,
    )


def check_stage(
    context: AssetCheckExecutionContext,
    settings: Settings,
    check_one: Callable[[StageContext], CheckOutcome],
) -> AssetCheckResult | Iterator[Output[None] | AssetCheckEvaluation]:
    """Evaluate a check for every partition of the run, recording one evaluation per partition.

    A one-partition run returns the partition's `AssetCheckResult` (Dagster tags it with the run's
    partition). A grouped run (BackfillPolicy with several partitions per run) has no single
    partition key, and `AssetCheckResult` has no partition field in Dagster 1.13: Dagster would
    store its result with no partition and leave every partition's planned execution unanswered.
    So every partition is evaluated first, then the check's output and one `AssetCheckEvaluation`
    per partition are yielded, each with its partition, the spec's `blocking` flag and the
    partition's own materialisation as target; Dagster stores each against that partition's
    planned execution, and fails the step afterwards if any blocking evaluation failed with ERROR.
    """

    def check_one_key(key: str) -> AssetCheckResult:
        with stage_errors_as_failures():
            return check_result(check_one(stage_context(context, settings, key)))

    keys = [str(key) for key in context.partition_keys]
    if len(keys) == 1:
        return check_one_key(keys[0])
    results = {key: check_one_key(key) for key in keys}  # nothing is recorded if one of them raises
    failed = [key for key, result in results.items() if not result.passed]
    [spec] = context.check_specs
    context.log.info(
        f"{spec.name}: "
        + (f"failed for {', '.join(failed)}; " if failed else "")
        + f"{len(keys) - len(failed)}/{len(keys)} partitions passed"
    )
    return _partition_evaluations(context, spec, results)


def _partition_evaluations(
    context: AssetCheckExecutionContext, spec: AssetCheckSpec, results: dict[str, AssetCheckResult]
) -> Iterator[Output[None] | AssetCheckEvaluation]:
    [output] = context.op_def.output_defs  # an @asset_check has the one output
    yield Output(None, output_name=output.name)
    for key, result in results.items():
        yield AssetCheckEvaluation(
            asset_key=spec.asset_key,
            check_name=spec.name,
            passed=result.passed,
            metadata=result.metadata,
            severity=result.severity,
            description=result.description,
            blocking=spec.blocking,
            partition=key,
            target_materialization_data=_target_materialization(context, spec.asset_key, key),
        )


@cache
def _target_materialization_type() -> type | None:
    """The type of `AssetCheckEvaluation.target_materialization_data`, read off the public class.

    Dagster exports `AssetCheckEvaluation` but not this field's type; it is taken from the class's
    annotations rather than imported from `dagster._core`. None (no target recorded, which Dagster
    treats as "compare timestamps") if a Dagster release changes the field.
    """
    try:
        hint = get_type_hints(AssetCheckEvaluation).get("target_materialization_data")
    except Exception:
        return None
    types = [t for t in get_args(hint) if isinstance(t, type) and t is not type(None)]
    return types[0] if len(types) == 1 else None


def _target_materialization(
    context: AssetCheckExecutionContext, asset_key: AssetKey, partition_key: str
) -> Any:
    """The partition's latest materialisation, the evaluation's target (what Dagster looks up for
    a one-partition run): the UI shows a partition's check as current only against it."""
    target_type = _target_materialization_type()
    if target_type is None:
        return None
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=asset_key, asset_partitions=[partition_key]), limit=1
    ).records
    if not records:
        return None
    record = records[0]
    return target_type(storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp)


def code_version(settings: Settings, stage_version: str) -> str:
    """Code version = stage logic + every profile fingerprint, so a profile edit shows as stale."""
    fingerprints = ",".join(f"{p.name}:{p.fingerprint}" for p in settings.profiles.profiles.values())
    return f"{stage_version}-{hashlib.sha256(fingerprints.encode()).hexdigest()[:12]}"


def namespace_mapping() -> MultiToSingleDimensionPartitionMapping:
    """namespace × profile partition → its namespace's partition."""
    return MultiToSingleDimensionPartitionMapping(NAMESPACE_DIMENSION)


def per_namespace(asset_key: str) -> AssetDep:
    """A per-profile asset's dependency on a per-namespace one (its namespace's partition)."""
    return AssetDep(asset_key, partition_mapping=namespace_mapping())
