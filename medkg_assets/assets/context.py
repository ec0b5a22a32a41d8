"""What every asset shares: partition handling, the access guard, telemetry batches, metadata."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    Failure,
    MaterializeResult,
    MetadataValue,
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
) -> AssetCheckResult:
    """Evaluate a check for every partition of the run; a grouped run passes only if all pass."""
    keys = [str(key) for key in context.partition_keys]
    if len(keys) == 1:
        return check_one(keys[0])
    results = {key: check_one(key) for key in keys}
    failed = [key for key, result in results.items() if not result.passed]
    return AssetCheckResult(
        passed=not failed,
        severity=next((r.severity for r in results.values() if not r.passed), AssetCheckSeverity.ERROR),
        description=(f"failed for {', '.join(failed)}: " if failed else "passed for every partition: ")
        + "; ".join(f"{key}: {result.description}" for key, result in results.items()),
        metadata={
            "partitions": len(keys),
            PER_PARTITION: MetadataValue.json(
                {
                    key: {"passed": r.passed, **_scalar_metadata(r.metadata or {})}
                    for key, r in results.items()
                }
            ),
        },
    )


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
