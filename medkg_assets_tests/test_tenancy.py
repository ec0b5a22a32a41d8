"""Namespace access control: the run's tenant and scopes, checked before any work and counted."""

import json

import pytest
from dagster import materialize

from medkg_assets.config import load_namespaces
from medkg_assets.resources.telemetry import TelemetryResource
from medkg_assets.settings import PROJECT_ROOT
from medkg_assets.storage.layout import ArtifactLayout
from medkg_assets.tenancy import TenantAccessError, check_access, run_scopes, run_tenant
from medkg_assets_tests.conftest import current_settings
from medkg_assets_tests.pipeline import definitions

SAMPLE = load_namespaces(PROJECT_ROOT / "config" / "namespaces", PROJECT_ROOT)["medquad_sample"]


def test_the_namespace_tenant_is_the_default_and_a_listed_tenant_may_embed_and_publish():
    assert run_tenant({}, SAMPLE) == "nih-public"
    check_access(SAMPLE, "medkg-dev", run_scopes({}, SAMPLE), "publish")


def test_a_tenant_not_allowed_is_refused_with_the_fix():
    with pytest.raises(TenantAccessError, match="allowed_tenants") as error:
        check_access(SAMPLE, "acme", run_scopes({}, SAMPLE), "embed")
    assert error.value.tenant == "acme" and error.value.namespace == "medquad_sample"


def test_a_run_without_the_required_scope_is_refused():
    with pytest.raises(TenantAccessError, match="lacks scope 'publish'"):
        check_access(SAMPLE, "nih-public", run_scopes({"medkg/scopes": "embed"}, SAMPLE), "publish")


def test_a_scope_the_namespace_does_not_grant_is_refused():
    tiny = SAMPLE.model_copy(update={"allowed_scopes": ["embed"]})
    with pytest.raises(TenantAccessError, match="does not grant scope 'publish'"):
        check_access(tiny, "nih-public", run_scopes({}, tiny), "publish")


def run_ingest(instance, tags):
    defs = definitions()
    return materialize(
        [defs.get_assets_def("source_documents"), defs.get_assets_def("chunks")],
        instance=instance,
        partition_key="tiny",
        tags=tags,
        raise_on_error=False,
        resources={"telemetry": TelemetryResource(data_dir=str(current_settings().data_dir))},
    )


def test_cross_tenant_materialisation_fails_before_any_work_and_is_counted(config_dir, instance):
    data_dir = current_settings().data_dir
    for _attempt in (1, 2):
        result = run_ingest(instance, {"medkg/tenant": "intruder"})
        assert not result.success
    assert not ArtifactLayout(data_dir).documents("tiny").exists()
    totals = json.loads((data_dir / "metrics" / "cross_tenant_totals.json").read_text())
    assert totals == {"tiny|intruder": 2}
    text = (data_dir / "metrics" / "tiny__access__intruder.prom").read_text()
    assert 'medicalkg_cross_tenant_access_attempts_total{namespace="tiny",tenant="intruder"} 2.0' in text
    logged = [e.user_message for e in instance.all_logs(result.run_id) if "cross-tenant" in e.user_message]
    assert logged and f"tenant=intruder namespace=tiny run_id={result.run_id}" in logged[0]


def test_the_namespace_tenant_materialises(config_dir, instance):
    assert run_ingest(instance, {"medkg/tenant": "tenant-a"}).success
