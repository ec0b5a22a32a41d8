"""What every asset needs from its Dagster context: partition dimensions and shared metadata."""

from __future__ import annotations

from typing import Any

from dagster import AssetExecutionContext, Failure, MetadataValue

from medkg_assets.partitions import split_partition_key
from medkg_assets.settings import ProjectConfig, get_config
from medkg_assets.storage.layout import ArtifactLayout


def namespace_and_profile(context: AssetExecutionContext) -> tuple[str, str]:
    return split_partition_key(context.partition_key)


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
