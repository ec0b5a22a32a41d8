"""Environment variables → typed settings, and the profile swap rules of the rollout runbook."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import TextIO

from pydantic import BaseModel, ConfigDict

from medkg_assets.config import (
    ConfigError,
    EmbeddingProfile,
    EnvironmentConfig,
    NamespaceConfig,
    ProfileManifest,
    load_environment,
    load_profiles,
)
from medkg_assets.config.env_names import (
    EMBEDDER_ENABLE_RERANK,
    EMBEDDER_ENABLE_SPARSE,
    EMBEDDING_PROFILE_EXPERIMENT,
    EMBEDDING_PROFILE_SWAPPABLE,
    EMBEDDINGS_PROFILE,
    MEDKG_CONFIG_DIR,
    MEDKG_DATA_DIR,
    MEDKG_ENV,
    MEDKG_MODELS_DIR,
)
from medkg_assets.config.environments import PERMISSIVE_ENVIRONMENTS
from medkg_assets.config.namespaces import scan_namespaces
from medkg_assets.rollout.selection import parse_percentage, rollout_set

logger = logging.getLogger("medkg_assets")

PROJECT_ROOT = Path(__file__).resolve().parents[1]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ProfileSwapError(ConfigError):
    """An override of the baseline profile that the environment's rules do not allow."""


def parse_flag(environ: Mapping[str, str], name: str, default: bool) -> bool:
    """Read a boolean environment variable; anything but a clear yes/no is an error."""
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean; use true or false")


class ProfileResolution(BaseModel):
    """Which profile this process runs, why, and the telemetry labels that say so."""

    model_config = ConfigDict(frozen=True)
    profile: str
    baseline: str
    reason: str
    labels: dict[str, str]
    experiment: str | None = None


def resolve_profile(
    environment: EnvironmentConfig,
    manifest: ProfileManifest,
    environ: Mapping[str, str],
) -> ProfileResolution:
    """Apply the runbook's swap rules to `EMBEDDINGS_PROFILE` and the environment's baseline.

    An override wins only in development/dev/test, with EMBEDDING_PROFILE_SWAPPABLE=true, or
    when EMBEDDING_PROFILE_EXPERIMENT names the same profile; anything else fails start-up.
    """
    baseline = manifest.get(environment.embedding.profile).name
    override = environ.get(EMBEDDINGS_PROFILE, "").strip() or None
    experiment = environ.get(EMBEDDING_PROFILE_EXPERIMENT, "").strip() or None
    swappable = parse_flag(environ, EMBEDDING_PROFILE_SWAPPABLE, default=False)
    if experiment:
        manifest.get(experiment)
    labels = {
        "embedding_namespace_mode": environment.embedding.namespace_mode,
        "embedding_strict_mode": str(environment.embedding.strict).lower(),
        "embedding_profile_swappable": str(swappable).lower(),
        "embedding_profile_experiment": experiment or "none",
    }
    if override is None or override == baseline:
        return ProfileResolution(
            profile=baseline, baseline=baseline, reason="baseline", labels=labels, experiment=experiment
        )
    manifest.get(override)
    if environment.name in PERMISSIVE_ENVIRONMENTS:
        reason = f"{EMBEDDINGS_PROFILE} override allowed in {environment.name}"
    elif swappable:
        reason = f"{EMBEDDINGS_PROFILE} override allowed by {EMBEDDING_PROFILE_SWAPPABLE}=true"
    elif experiment == override:
        reason = f"experiment {EMBEDDING_PROFILE_EXPERIMENT}={experiment}"
    else:
        mismatch = (
            f" ({EMBEDDING_PROFILE_EXPERIMENT} is {experiment!r}, which does not match)" if experiment else ""
        )
        raise ProfileSwapError(
            f"{EMBEDDINGS_PROFILE}={override!r} conflicts with the baseline profile "
            f"{baseline!r} of environment {environment.name!r}{mismatch}. Outside "
            f"development/dev/test a swap needs {EMBEDDING_PROFILE_SWAPPABLE}=true, or "
            f"{EMBEDDING_PROFILE_EXPERIMENT}={override} together with "
            f"{EMBEDDINGS_PROFILE}={override} to run it as an experiment."
        )
    return ProfileResolution(
        profile=override, baseline=baseline, reason=reason, labels=labels, experiment=experiment
    )


class Settings:
    """Everything configured for this process: environment, profiles, namespaces, toggles.

    Built once at an edge (`definitions.py`, the CLI, a benchmark) from the environment and
    passed down explicitly; nothing below the edges reads the environment again.
    """

    def __init__(self, environ: Mapping[str, str] | None = None):
        self.environ = dict(os.environ if environ is None else environ)
        env_name = self.environ.get(MEDKG_ENV, "").strip() or "development"
        self.config_dir = Path(self.environ.get(MEDKG_CONFIG_DIR) or PROJECT_ROOT / "config")
        self.project_root = self.config_dir.resolve().parent
        self.environment = load_environment(self.config_dir, env_name)
        self.profiles = load_profiles(self.config_dir / "embedding_profiles.yaml")
        self._namespace_registry = scan_namespaces(self.config_dir / "namespaces", self.project_root)
        self.namespaces: dict[str, NamespaceConfig] = self._namespace_registry.namespaces
        # Files skipped because their name cannot be a namespace: path → message with the fix.
        self.invalid_namespace_files: dict[Path, str] = self._namespace_registry.invalid_files
        self.resolution = resolve_profile(self.environment, self.profiles, self.environ)
        self.enable_sparse = parse_flag(self.environ, EMBEDDER_ENABLE_SPARSE, default=True)
        self.enable_rerank = parse_flag(self.environ, EMBEDDER_ENABLE_RERANK, default=True)

    @cached_property
    def data_dir(self) -> Path:
        raw = self.environ.get(MEDKG_DATA_DIR) or self.environment.storage.data_dir
        path = Path(raw)
        return path if path.is_absolute() else (self.project_root / path)

    @cached_property
    def models_dir(self) -> Path:
        raw = self.environ.get(MEDKG_MODELS_DIR)
        return Path(raw) if raw else (self.project_root.parent / "shared" / "models")

    @property
    def profile(self) -> EmbeddingProfile:
        """The resolved profile of this process (baseline unless a permitted override)."""
        return self.profiles.get(self.resolution.profile)

    @property
    def telemetry_labels(self) -> dict[str, str]:
        return self.resolution.labels

    @property
    def candidate_profile(self) -> str | None:
        """EMBEDDING_PROFILE_EXPERIMENT: the profile being rolled out (validated at start-up)."""
        return self.resolution.experiment

    @cached_property
    def rollout_percentage(self) -> int:
        return parse_percentage(self.environ)

    def in_rollout(self, namespace: str) -> bool:
        """Whether `namespace` takes the candidate profile (canary list or hash percentage)."""
        canary = self.environment.rollout.canary_namespaces
        return self.candidate_profile is not None and bool(
            rollout_set([namespace], canary, self.rollout_percentage)
        )

    def profiles_for(self, namespace: str, primary: str | None = None) -> list[str]:
        """Profiles automation builds for `namespace`: `primary` (default: the resolved profile),
        plus the candidate when the namespace is in the rollout."""
        profiles = [primary or self.resolution.profile]
        candidate = self.candidate_profile
        if candidate is not None and self.in_rollout(namespace) and candidate not in profiles:
            profiles.append(candidate)
        return profiles

    def serving_target(self, namespace: str) -> str:
        """The profile `serving_alias` makes live by default: the candidate in rollout, else the baseline."""
        candidate = self.candidate_profile
        return candidate if candidate is not None and self.in_rollout(namespace) else self.resolution.baseline

    def namespace(self, name: str) -> NamespaceConfig:
        """The namespace called `name`; an unknown name lists the configured ones."""
        try:
            return self.namespaces[name]
        except KeyError:
            skipped = self._namespace_registry.invalid_file_for(name)
            if skipped:
                raise ConfigError(f"namespace {name!r} is not loaded: {skipped}") from None
            known = ", ".join(sorted(self.namespaces)) or "none"
            raise ConfigError(
                f"unknown namespace {name!r}; add {self.config_dir / 'namespaces' / (name + '.yaml')}"
                f" (configured: {known})"
            ) from None

    def warnings(self) -> list[str]:
        """Start-up problems that do not stop the process (logged once by `load_settings`)."""
        return [f"namespace file skipped: {message}" for message in self.invalid_namespace_files.values()]

    def banner(self) -> str:
        labels = " ".join(f"{k}={v}" for k, v in sorted(self.telemetry_labels.items()))
        skipped = (
            f" skipped_namespace_files={','.join(str(p) for p in self.invalid_namespace_files)} (rename them)"
            if self.invalid_namespace_files
            else ""
        )
        return (
            f"medkg-assets: environment={self.environment.name} "
            f"profile={self.resolution.profile} (baseline {self.resolution.baseline}; "
            f"{self.resolution.reason}) data_dir={self.data_dir} {labels}{skipped}"
        )


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from the environment, with the start-up banner and warnings logged (edges only)."""
    settings = Settings(environ)
    logger.info(settings.banner())
    for warning in settings.warnings():
        logger.warning(warning)
    return settings


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to `sys.stderr` as it is at each record (a redirected or captured stream included),
    not to the stream that was current when logging was configured."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def configure_logging() -> None:
    """Show the start-up banner in `dagster dev` and code-server logs (called by the edges)."""
    if not logger.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s - medkg_assets - %(levelname)s - %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
