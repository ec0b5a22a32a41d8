"""Typed configuration: profiles, namespaces and environments, loaded from `config/`."""

from medkg_assets.config.environments import EnvironmentConfig, load_environment
from medkg_assets.config.loading import ConfigError
from medkg_assets.config.namespaces import NamespaceConfig, load_namespaces, validate_namespace_name
from medkg_assets.config.profiles import EmbeddingProfile, ProfileManifest, load_profiles

__all__ = [
    "ConfigError",
    "EmbeddingProfile",
    "EnvironmentConfig",
    "NamespaceConfig",
    "ProfileManifest",
    "load_environment",
    "load_namespaces",
    "load_profiles",
    "validate_namespace_name",
]
