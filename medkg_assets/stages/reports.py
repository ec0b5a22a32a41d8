"""Typed stage reports and check outcomes, and the metadata values they show in the UI.

A report is what a stage returns: typed fields that the summary, telemetry and tests read, and
`to_metadata()` for the UI. Metadata values are plain Python values plus three markers
(`Markdown`, `JsonValue`, `PathValue`) that the Dagster edge turns into its own types, so this
module stays free of Dagster.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from medkg_assets.storage.atomic import atomic_write_json


class Markdown(str):
    """Metadata shown as Markdown (a table, usually)."""


@dataclass(frozen=True)
class JsonValue:
    """Metadata shown as JSON."""

    value: Any


class PathValue(str):
    """Metadata shown as a path."""


MetadataItem = bool | int | float | str | Markdown | JsonValue | PathValue | None
Metadata = dict[str, MetadataItem]


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> Markdown:
    """A small Markdown table for the UI."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return Markdown("\n".join(lines))


def path_value(path: Path | str | None) -> PathValue:
    return PathValue(str(path))


@dataclass(frozen=True)
class StageFigures:
    """What telemetry records of a stage batch: counts of encoded and cached items, quality."""

    provider: str | None = None
    generated: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    token_budget: dict[str, int] = field(default_factory=dict)
    recall_at_10: float | None = None
    recall_floor: float | None = None


class Report(BaseModel):
    """Base of every stage report: frozen, serialisable (some are kept beside their artefacts)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_metadata(self) -> Metadata:
        raise NotImplementedError

    def figures(self) -> StageFigures:
        """Telemetry figures; a stage that encodes nothing reports none."""
        return StageFigures()

    @property
    def data_version(self) -> str | None:
        """A content version Dagster records for the materialisation (None: Dagster's default)."""
        return None


@dataclass(frozen=True)
class CheckOutcome:
    """A check's verdict, independent of Dagster: the edge turns it into an `AssetCheckResult`."""

    passed: bool
    metadata: Metadata
    description: str | None = None
    severity: Literal["error", "warn"] = "error"


class StageError(RuntimeError):
    """A stage that cannot finish: says where, why and the fix; the edge fails the step with it."""

    def __init__(self, description: str, metadata: Metadata | None = None):
        super().__init__(description)
        self.description = description
        self.metadata: Metadata = metadata or {}

    @classmethod
    def wrap(cls, where: str, error: Exception) -> StageError:
        """A failure that names the partition and records the error type for operators."""
        return cls(f"{where}: {type(error).__name__}: {error}", {"error_type": type(error).__name__})


def save_report(path: Path, report: Report) -> None:
    """Keep a stage's report beside its artefact for the summary (atomic, like every artefact)."""
    atomic_write_json(path, report.model_dump(mode="json"))


ReportType = TypeVar("ReportType", bound=Report)


def load_report(path: Path, report_type: type[ReportType], version: str) -> ReportType | None:
    """The kept report of artefact `version`, or None when the report describes another version
    (or none was kept, e.g. artefacts built before reports were kept)."""
    try:
        report = report_type.model_validate(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None
    return report if getattr(report, "version", None) == version else None
