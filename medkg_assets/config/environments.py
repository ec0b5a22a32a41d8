"""Environment files (`config/<env>.yaml`): the baseline profile and storage locations."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from medkg_assets.config.loading import ConfigError, parse_model, read_yaml

# Names MEDKG_ENV accepts, mapped to the file that configures them.
ENVIRONMENT_FILES = {
    "development": "development",
    "dev": "development",
    "test": "test",
    "staging": "staging",
    "production": "production",
    "prod": "production",
}
# Environments in which a profile override needs no flag (the runbook's rule).
PERMISSIVE_ENVIRONMENTS = frozenset({"development", "dev", "test"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EmbeddingEnvironmentSpec(_Strict):
    profile: str
    namespace_mode: str = "multi"
    strict: bool = True


class StorageSpec(_Strict):
    data_dir: str = ".medkg"


class AutomationSpec(_Strict):
    reingest_cron: str = "0 3 * * *"
    reingest_schedule_enabled: bool = False
    # BackfillPolicy.multi_run: how many partitions one backfill run builds (1 = a run per partition,
    # so every partition keeps its own run, logs and check history).
    backfill_partitions_per_run: int = Field(default=1, ge=1)


class RolloutSpec(_Strict):
    # Namespaces that always take EMBEDDING_PROFILE_EXPERIMENT (the canary), before any percentage.
    canary_namespaces: list[str] = Field(default_factory=list)


class EnvironmentConfig(_Strict):
    name: str
    embedding: EmbeddingEnvironmentSpec
    storage: StorageSpec = StorageSpec()
    automation: AutomationSpec = AutomationSpec()
    rollout: RolloutSpec = RolloutSpec()


def load_environment(config_dir: Path, name: str) -> EnvironmentConfig:
    """Load the file for environment `name` (`dev` and `prod` are aliases)."""
    if name not in ENVIRONMENT_FILES:
        known = ", ".join(sorted(ENVIRONMENT_FILES))
        raise ConfigError(f"MEDKG_ENV={name!r} is not a known environment; use one of: {known}")
    path = config_dir / f"{ENVIRONMENT_FILES[name]}.yaml"
    return parse_model(EnvironmentConfig, {"name": name, **read_yaml(path)}, path)
