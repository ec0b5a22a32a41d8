"""Namespace registry (`config/namespaces/<name>.yaml`): one collection each."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from medkg_assets.config.loading import ConfigError, expand_variables, parse_model, read_yaml

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def validate_namespace_name(name: str) -> str:
    """Accept `kind.model.dim.version` and plain collection names; refuse anything path-like."""
    if "/" in name or "\\" in name or ".." in name or not _SAFE_NAME.match(name):
        raise ConfigError(
            f"invalid namespace name {name!r}: use letters, digits, '.', '_' and '-' "
            "(no path separators, no '..', at most 128 characters, starting with a letter or digit)"
        )
    return name


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceSpec(_Strict):
    path: str


class ChunkingSpec(_Strict):
    window_tokens: int = Field(gt=0, default=200)
    overlap_tokens: int = Field(ge=0, default=32)
    max_document_bytes: int = Field(gt=0, default=1_000_000)

    @model_validator(mode="after")
    def _overlap_smaller_than_window(self) -> ChunkingSpec:
        if self.overlap_tokens >= self.window_tokens:
            raise ValueError("overlap_tokens must be smaller than window_tokens")
        return self


class ShardingSpec(_Strict):
    """How many chunks one shard (the unit of work of every per-chunk stage) may hold."""

    max_chunks_per_shard: int = Field(gt=0, default=50_000)


class EvalSetSpec(_Strict):
    """A judged query set: `qrels` are dev judgments (scored, and what a final stage is selected
    on); `train_qrels`, when given, are the only judgments tuning and adaptation may fit to."""

    name: str = Field(default="dev", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    queries: str
    qrels: str
    train_qrels: str | None = None


class NamespaceConfig(_Strict):
    """A collection: where its documents are, who may use it, how it is chunked."""

    name: str
    source: SourceSpec
    tenant_id: str
    allowed_tenants: list[str] = Field(default_factory=list)
    allowed_scopes: list[str] = Field(default_factory=lambda: ["embed"])
    tokenizer: str
    max_tokens: int = Field(gt=0)
    chunking: ChunkingSpec = Field(default_factory=ChunkingSpec)
    sharding: ShardingSpec = Field(default_factory=ShardingSpec)
    on_bad_record: Literal["fail", "skip"] = "fail"
    # A chunk above max_tokens under a profile's tokenizer is re-split into fitting pieces or dropped.
    over_budget: Literal["resplit", "reject"] = "resplit"
    # Judged query sets, each with a name (one mapping is read as a list of one named "dev").
    eval: list[EvalSetSpec] = Field(default_factory=list)
    config_file: Path
    project_root: Path

    @field_validator("eval", mode="before")
    @classmethod
    def _eval_as_list(cls, value: object) -> object:
        if value is None:
            return []
        return [value] if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _eval_names_unique(self) -> NamespaceConfig:
        names = [spec.name for spec in self.eval]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"eval set names must be unique; repeated: {', '.join(repeated)}")
        return self

    @model_validator(mode="after")
    def _window_fits_budget(self) -> NamespaceConfig:
        if self.chunking.window_tokens > self.max_tokens:
            raise ValueError(
                f"chunking.window_tokens ({self.chunking.window_tokens}) exceeds max_tokens "
                f"({self.max_tokens})"
            )
        return self

    def resolve(self, location: str) -> Path:
        """A configured location with variables expanded, relative to the project root."""
        path = Path(expand_variables(location))
        return path if path.is_absolute() else (self.project_root / path).resolve()

    @property
    def source_path(self) -> Path:
        return self.resolve(self.source.path)


NAMESPACE_SUFFIX = ".yaml"


def _suggested_name(stem: str) -> str | None:
    """A valid namespace name close to `stem` (for the rename hint), or None."""
    candidate = re.sub(r"\.{2,}", ".", re.sub(r"[^A-Za-z0-9._-]+", "_", stem))
    candidate = candidate.lstrip("._-")[:128]
    return candidate if candidate and _SAFE_NAME.match(candidate) else None


def namespace_file_problem(path: Path) -> str | None:
    """Why `path` cannot be a namespace file because of its name (message names file and fix)."""
    if path.suffix != NAMESPACE_SUFFIX:
        return (
            f"{path}: namespace files end in {NAMESPACE_SUFFIX} — rename it to {path.stem}{NAMESPACE_SUFFIX}"
        )
    try:
        validate_namespace_name(path.stem)
    except ConfigError as error:
        suggestion = _suggested_name(path.stem)
        hint = f", e.g. to {suggestion}{NAMESPACE_SUFFIX}" if suggestion else ""
        return f"{path}: {error} — rename the file{hint} (the file name is the namespace name)"
    return None


def load_namespace(path: Path, project_root: Path) -> NamespaceConfig:
    """Load one namespace file; its name is the file stem."""
    problem = namespace_file_problem(path)
    if problem:
        raise ConfigError(problem)
    body = read_yaml(path)
    data = {"name": path.stem, **body, "config_file": path, "project_root": project_root}
    return parse_model(NamespaceConfig, data, path)


@dataclass(frozen=True)
class NamespaceRegistry:
    """The loaded namespaces, and the files skipped because their *name* is unusable."""

    namespaces: dict[str, NamespaceConfig]
    # path → message naming the file and the rename; the other namespaces stay usable.
    invalid_files: dict[Path, str] = field(default_factory=dict)

    def invalid_file_for(self, name: str) -> str | None:
        """The message of a skipped file whose stem is `name` (what someone asking for it meant)."""
        return next((m for p, m in self.invalid_files.items() if p.stem == name), None)


def scan_namespaces(directory: Path, project_root: Path) -> NamespaceRegistry:
    """Every `*.yaml` under `directory`, by namespace name (sorted, so partitions are stable).

    A file whose name cannot be a namespace (`bad name.yaml`, `a..b.yaml`, `x.yml`) is skipped
    and listed in `invalid_files`, so one misnamed file does not take every namespace down.
    Invalid content (unknown keys, bad values, malformed YAML) still fails, naming file and key.
    """
    if not directory.is_dir():
        raise ConfigError(f"{directory}: namespace directory not found")
    namespaces: dict[str, NamespaceConfig] = {}
    invalid: dict[Path, str] = {}
    candidates = (p for p in directory.iterdir() if p.suffix.lower() in (".yaml", ".yml") and p.is_file())
    for path in sorted(candidates):
        problem = namespace_file_problem(path)
        if problem:
            invalid[path] = problem
        else:
            namespaces[path.stem] = load_namespace(path, project_root)
    return NamespaceRegistry(namespaces, invalid)


def load_namespaces(directory: Path, project_root: Path) -> dict[str, NamespaceConfig]:
    """The usable namespaces under `directory` (see `scan_namespaces` for the skipped files)."""
    return scan_namespaces(directory, project_root).namespaces
