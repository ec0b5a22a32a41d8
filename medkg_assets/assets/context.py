"""What every asset shares: partition handling, the access guard, telemetry batches, metadata."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cache
from typing import Any, get_args, get_type_hints

from dagster import (
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetRecordsFilter,
    Failure,
    MaterializeResult,
    MetadataValue,
    Output,
)

from medkg_assets.resources.telemetry import TelemetryResource
from medkg_assets.settings import ProjectConfig, get_config
from medkg_assets.storage.layout import ArtifactLayout
from medkg_assets.tenancy import EMBED_SCOPE, TenantAccessError, check_access, run_scopes, run_tenant

# Metadata key under which a multi-partition run records each partition's own figures.
PER_PARTITION = "per_partition"


def _scalar_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """The plain numbers and strings of a metadata dict (tables and JSON stay per run)."""
    out = {}
    for key, value in metadata.items():
        raw = value.value if isinstance(value, MetadataValue) else value
        if isinstance(raw, bool | int | float | str):
            out[key] = raw
    return out


def _namespace_of(partition_key: str) -> tuple[str, str]:
    """(namespace, profile) of a `namespace|profile` or plain namespace key (profile "-" then)."""
    namespace, _, profile = partition_key.partition("|")
    return namespace, profile or "-"


def guard_access(context: AssetExecutionContext, telemetry: TelemetryResource, keys: list[str], scope: str):
    """Refuse the run before any work when its tenant or scopes do not reach every namespace in it."""
    config = get_config()
    for name in dict.fromkeys(_namespace_of(key)[0] for key in keys):
        namespace = config.namespace(name)
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


def for_each_partition(
    context: AssetExecutionContext,
    telemetry: TelemetryResource,
    stage: str,
    provider: str,
    materialize_one: Callable[[str], MaterializeResult],
    scope: str = EMBED_SCOPE,
) -> MaterializeResult:
    """Check access, then build every partition of the run in turn, each as one telemetry batch.

    A run holds one partition unless the BackfillPolicy groups several into one run; then Dagster
    records one materialisation per partition from a single result, so each partition's own
    figures travel under `per_partition` (which `partition_metadata` reads back).
    """
    keys = [str(key) for key in context.partition_keys]
    guard_access(context, telemetry, keys, scope)
    config = get_config()

    def build(key: str) -> MaterializeResult:
        namespace_name, profile = _namespace_of(key)
        tenant = run_tenant(context.run.tags, config.namespace(namespace_name))
        with telemetry.stage_batch(
            context.log, context.run.run_id, namespace_name, tenant, profile, stage, provider
        ) as figures:
            result = materialize_one(key)
            figures.update_from(_scalar_metadata(result.metadata or {}))
        return result

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
            "summary": markdown_table(
                ["partition", *columns],
                [[key, *(v.get(c, "") for c in columns)] for key, v in figures.items()],
            ),
        }
    )


def partition_metadata(metadata: dict[str, Any], partition_key: str) -> dict[str, Any]:
    """One partition's figures from a materialisation, whether or not its run grouped partitions."""
    grouped = metadata.get(PER_PARTITION)
    if isinstance(grouped, dict) and partition_key in grouped:
        return grouped[partition_key]
    return metadata


def check_each_partition(
    context: AssetCheckExecutionContext, check_one: Callable[[str], AssetCheckResult]
) -> AssetCheckResult | Iterator[Output | AssetCheckEvaluation]:
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
    keys = [str(key) for key in context.partition_keys]
    if len(keys) == 1:
        return check_one(keys[0])
    results = {key: check_one(key) for key in keys}  # nothing is recorded if one of them raises
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
) -> Iterator[Output | AssetCheckEvaluation]:
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


def _target_materialization(context: AssetCheckExecutionContext, asset_key: AssetKey, partition_key: str):
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


def layout(config: ProjectConfig | None = None) -> ArtifactLayout:
    return ArtifactLayout((config or get_config()).data_dir)


def telemetry_metadata(config: ProjectConfig | None = None) -> dict[str, Any]:
    """The start-up telemetry labels, attached to every materialisation."""
    config = config or get_config()
    return {
        **{key: MetadataValue.text(value) for key, value in config.telemetry_labels.items()},
        "environment": MetadataValue.text(config.environment.name),
    }


def markdown_table(headers: list[str], rows: list[list[Any]]) -> MetadataValue:
    """A small Markdown table for the UI."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return MetadataValue.md("\n".join(lines))


def stage_failure(where: str, error: Exception) -> Failure:
    """A step failure that names the partition and records the error type for operators."""
    return Failure(
        description=f"{where}: {type(error).__name__}: {error}",
        metadata={"error_type": type(error).__name__},
    )
