"""Stage reports' metadata in Dagster's types: the one place markers become `MetadataValue`s."""

from __future__ import annotations

from typing import Any

from dagster import MetadataValue

from medkg_assets.stages.reports import JsonValue, Markdown, Metadata, PathValue


def dagster_metadata(metadata: Metadata) -> dict[str, Any]:
    """A report's metadata in Dagster's types (Markdown, JSON and path markers become theirs)."""
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        if isinstance(value, Markdown):
            out[key] = MetadataValue.md(str(value))
        elif isinstance(value, PathValue):
            out[key] = MetadataValue.path(str(value))
        elif isinstance(value, JsonValue):
            out[key] = MetadataValue.json(value.value)
        elif value is not None:
            out[key] = value
    return out
