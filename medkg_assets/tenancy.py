"""Namespace access control: which tenant a run acts for, and whether it may touch a namespace."""

from __future__ import annotations

from collections.abc import Mapping

from medkg_assets.config import NamespaceConfig

TENANT_TAG = "medkg/tenant"
SCOPES_TAG = "medkg/scopes"
EMBED_SCOPE = "embed"
PUBLISH_SCOPE = "publish"


class TenantAccessError(PermissionError):
    """A run asked for a namespace its tenant or scopes do not reach; nothing was done."""

    def __init__(self, message: str, namespace: str, tenant: str):
        super().__init__(message)
        self.namespace, self.tenant = namespace, tenant


def run_tenant(tags: Mapping[str, str], namespace: NamespaceConfig) -> str:
    """The tenant a run acts for: its `medkg/tenant` tag, else the namespace's own tenant."""
    return tags.get(TENANT_TAG, "").strip() or namespace.tenant_id


def run_scopes(tags: Mapping[str, str], namespace: NamespaceConfig) -> set[str]:
    """Scopes the run claims (`medkg/scopes`, comma-separated); by default all the namespace grants."""
    raw = tags.get(SCOPES_TAG, "").strip()
    return {s.strip() for s in raw.split(",") if s.strip()} if raw else set(namespace.allowed_scopes)


def check_access(namespace: NamespaceConfig, tenant: str, scopes: set[str], required_scope: str) -> None:
    """Raise TenantAccessError unless `tenant` may use `namespace` with `required_scope`."""
    allowed = {namespace.tenant_id, *namespace.allowed_tenants}
    if tenant not in allowed:
        raise TenantAccessError(
            f"tenant {tenant!r} may not use namespace {namespace.name!r} (allowed tenants: "
            f"{', '.join(sorted(allowed))}); add it to allowed_tenants in {namespace.config_file} "
            f"or run with the {TENANT_TAG} tag of an allowed tenant",
            namespace.name,
            tenant,
        )
    if required_scope not in namespace.allowed_scopes:
        raise TenantAccessError(
            f"namespace {namespace.name!r} does not grant scope {required_scope!r} (granted: "
            f"{', '.join(namespace.allowed_scopes)}); add it to allowed_scopes in {namespace.config_file}",
            namespace.name,
            tenant,
        )
    if required_scope not in scopes:
        raise TenantAccessError(
            f"run for tenant {tenant!r} lacks scope {required_scope!r} on namespace {namespace.name!r} "
            f"(its {SCOPES_TAG} tag grants: {', '.join(sorted(scopes)) or 'nothing'})",
            namespace.name,
            tenant,
        )
