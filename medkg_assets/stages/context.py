"""`StageContext`: everything a stage needs for one partition, built once by whoever runs it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

from medkg_assets.config import EmbeddingProfile, NamespaceConfig
from medkg_assets.settings import Settings
from medkg_assets.storage.layout import ArtifactLayout


class StageLog(Protocol):
    """What a stage logs through: Dagster's log manager in a run, a `logging.Logger` elsewhere."""

    def info(self, msg: str) -> None: ...

    def warning(self, msg: str) -> None: ...


Model = TypeVar("Model", covariant=True)


class ProfileModels(Protocol[Model]):
    """Opens a profile's model under the device policy (an encoder resource in Dagster)."""

    def check_device(self, profile: EmbeddingProfile) -> None:
        """Fail before any work when the profile needs a device this process lacks."""

    def open(self, profile: EmbeddingProfile, models_dir: Path | None) -> Model: ...


@dataclass(frozen=True)
class StageContext:
    """One partition's settings, namespace, profile, layout, tenant, scopes, run and log.

    `profile` is None for the per-namespace stages (source documents, chunks, serving).
    """

    settings: Settings
    namespace: NamespaceConfig
    profile: EmbeddingProfile | None
    layout: ArtifactLayout
    tenant: str
    run_id: str
    log: StageLog
    scopes: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def build(
        cls,
        settings: Settings,
        namespace: str,
        profile: str | None = None,
        *,
        run_id: str = "local",
        log: StageLog | None = None,
        tenant: str | None = None,
        scopes: frozenset[str] | None = None,
    ) -> StageContext:
        """A context for `namespace` (× `profile`); unknown names fail with the configured ones."""
        config = settings.namespace(namespace)
        return cls(
            settings=settings,
            namespace=config,
            profile=settings.profiles.get(profile) if profile else None,
            layout=ArtifactLayout(settings.data_dir),
            tenant=tenant or config.tenant_id,
            run_id=run_id,
            log=log or logging.getLogger("medkg_assets"),
            scopes=frozenset(config.allowed_scopes) if scopes is None else scopes,
        )

    @property
    def namespace_name(self) -> str:
        return self.namespace.name

    def require_profile(self) -> EmbeddingProfile:
        """The profile of a per-profile stage (a per-namespace context has none)."""
        if self.profile is None:
            raise ValueError(f"namespace {self.namespace.name}: this stage needs a profile")
        return self.profile

    @property
    def where(self) -> str:
        """How errors and logs name the partition."""
        if self.profile is None:
            return f"namespace {self.namespace.name}"
        return f"namespace {self.namespace.name}, profile {self.profile.name}"

    @property
    def key(self) -> str:
        """`namespace|profile` (or the namespace), the partition key's string form."""
        return self.namespace.name if self.profile is None else f"{self.namespace.name}|{self.profile.name}"
