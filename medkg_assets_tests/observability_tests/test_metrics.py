"""Pipeline metrics: the text file, and a push that a real Pushgateway and Prometheus both see."""

import subprocess
import time
import uuid

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from medkg_assets.observability.metrics import (
    PUSHGATEWAY_URL_ENV,
    MetricsPushError,
    PipelineMetrics,
    publish,
    textfile_name,
)
from medkg_assets_tests.processes import (
    free_port,
    http_ok,
    require_binary,
    start_until_ready,
    stop_process_group,
)

READY_TIMEOUT_S = 30
QUERY_TIMEOUT_S = 30
HINT = "`make test` installs it (scripts/start_test_services.sh)"


def sample_metrics(namespace: str = "ns", profile: str = "p", generated: int = 120) -> PipelineMetrics:
    metrics = PipelineMetrics()
    metrics.observe_stage(
        namespace, profile, "dense", "vllm", 2.0, generated, cache_hits=30, cache_misses=120
    )
    metrics.count_failure(namespace, profile, "dense", "GpuNotAvailableError")
    metrics.count_cross_tenant(namespace, "tenant-b")
    metrics.count_token_budget(namespace, profile, "resplit", 3)
    metrics.count_token_budget(namespace, profile, "rejected", 1)
    metrics.set_recall(namespace, profile, 0.82, 0.75)
    return metrics


def grouping(namespace: str = "ns", profile: str = "p", stage: str = "dense") -> dict:
    return {"namespace": namespace, "profile": profile, "stage": stage}


def samples_by_name(text: str) -> dict:
    """{sample name: [(labels, value)]} of a Prometheus text exposition."""
    found: dict = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def value_of(samples: dict, name: str, **labels) -> float:
    matches = [value for found, value in samples.get(name, []) if labels.items() <= found.items()]
    assert len(matches) == 1, f"{name}{labels}: {matches} in {samples.get(name)}"
    return matches[0]


# --- text file -------------------------------------------------------------------------------------


def test_textfile_holds_every_family_with_its_labels_and_values(tmp_path):
    result = publish(sample_metrics(), tmp_path, environ={}, grouping_key=grouping())

    assert result.textfile == tmp_path / "metrics" / "ns__p__dense.prom"
    assert result.pushed_to is None and result.push_error is None
    samples = samples_by_name(result.textfile.read_text())
    stage = {"namespace": "ns", "profile": "p", "stage": "dense"}
    assert value_of(samples, "medicalkg_embedding_duration_seconds_count", **stage, provider="vllm") == 1
    assert value_of(samples, "medicalkg_embedding_duration_seconds_sum", **stage, provider="vllm") == 2.0
    assert value_of(samples, "medicalkg_embedding_duration_seconds_bucket", **stage, le="2.5") == 1
    assert value_of(samples, "medicalkg_embedding_duration_seconds_bucket", **stage, le="1.0") == 0
    assert value_of(samples, "medicalkg_embeddings_generated_total", **stage, provider="vllm") == 120
    assert value_of(samples, "medicalkg_embedding_cache_hits_total", **stage) == 30
    assert value_of(samples, "medicalkg_embedding_cache_misses_total", **stage) == 120
    assert value_of(samples, "medicalkg_embeddings_per_second", **stage, provider="vllm") == 60.0
    assert (
        value_of(samples, "medicalkg_embedding_failures_total", **stage, error_type="GpuNotAvailableError")
        == 1
    )
    assert (
        value_of(samples, "medicalkg_cross_tenant_access_attempts_total", namespace="ns", tenant="tenant-b")
        == 1
    )
    assert (
        value_of(
            samples, "medicalkg_token_budget_chunks_total", namespace="ns", profile="p", outcome="resplit"
        )
        == 3
    )
    assert (
        value_of(
            samples, "medicalkg_token_budget_chunks_total", namespace="ns", profile="p", outcome="rejected"
        )
        == 1
    )
    assert value_of(samples, "medicalkg_retrieval_recall_at_10", namespace="ns", profile="p") == 0.82
    assert value_of(samples, "medicalkg_retrieval_recall_at_10_floor", namespace="ns", profile="p") == 0.75


def test_textfile_passes_promtool_lint(tmp_path):
    promtool = require_binary("promtool", HINT)
    textfile = publish(sample_metrics(), tmp_path, environ={}, grouping_key=grouping()).textfile

    checked = subprocess.run(
        [promtool, "check", "metrics"], input=textfile.read_bytes(), capture_output=True, timeout=30
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_rerun_replaces_its_textfile(tmp_path):
    publish(sample_metrics(generated=120), tmp_path, environ={}, grouping_key=grouping())
    result = publish(sample_metrics(generated=7), tmp_path, environ={}, grouping_key=grouping())

    assert [path.name for path in (tmp_path / "metrics").iterdir()] == ["ns__p__dense.prom"]
    samples = samples_by_name(result.textfile.read_text())
    assert value_of(samples, "medicalkg_embeddings_generated_total", namespace="ns", stage="dense") == 7


def test_textfile_name_is_filesystem_safe_and_keeps_distinct_keys_apart():
    slashed = textfile_name(grouping(namespace="../a/b"))
    underscored = textfile_name(grouping(namespace="___a_b"))

    assert "/" not in slashed and not slashed.startswith(".")
    assert slashed.endswith("__p__dense.prom")
    assert slashed != underscored


def test_batch_without_new_embeddings_sets_no_throughput(tmp_path):
    metrics = PipelineMetrics()
    metrics.observe_stage("ns", "p", "dense", "cache", 0.2, generated=0, cache_hits=50, cache_misses=0)

    samples = samples_by_name(metrics.write_textfile(tmp_path / "m.prom").read_text())
    assert "medicalkg_embeddings_per_second" not in samples
    assert value_of(samples, "medicalkg_embedding_cache_hits_total", namespace="ns") == 50


def test_unknown_token_budget_outcome_is_rejected():
    with pytest.raises(ValueError, match="resplit"):
        PipelineMetrics().count_token_budget("ns", "p", "truncated", 1)


def test_runs_do_not_share_series():
    first = PipelineMetrics()
    first.count_cross_tenant("ns", "tenant-b")

    assert (
        PipelineMetrics().registry.get_sample_value(
            "medicalkg_cross_tenant_access_attempts_total", {"namespace": "ns", "tenant": "tenant-b"}
        )
        is None
    )


def test_push_to_unreachable_gateway_is_reported_and_keeps_the_textfile(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"

    result = publish(sample_metrics(), tmp_path, environ={PUSHGATEWAY_URL_ENV: url}, grouping_key=grouping())

    assert isinstance(result.push_error, MetricsPushError)
    assert url in str(result.push_error)
    assert result.pushed_to is None
    assert "medicalkg_embeddings_generated_total" in result.textfile.read_text()
    with pytest.raises(MetricsPushError, match=url):
        sample_metrics().push(url, grouping_key=grouping())


# --- real Pushgateway and Prometheus -----------------------------------------------------------------


@pytest.fixture(scope="module")
def monitoring(tmp_path_factory):
    """(pushgateway URL, prometheus URL): Prometheus scrapes the Pushgateway every second."""
    pushgateway_bin = require_binary("prometheus-pushgateway", HINT)
    prometheus_bin = require_binary("prometheus", HINT)
    root = tmp_path_factory.mktemp("monitoring")
    gateway_port, prometheus_port = free_port(), free_port()
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    prometheus_url = f"http://127.0.0.1:{prometheus_port}"
    config = root / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: pushgateway\n"
        "    honor_labels: true\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{gateway_port}']}}]\n"
    )
    processes = []
    try:
        processes.append(
            start_until_ready(
                [pushgateway_bin, f"--web.listen-address=127.0.0.1:{gateway_port}"],
                root / "pushgateway.log",
                http_ok(f"{gateway_url}/-/ready"),
                READY_TIMEOUT_S,
                poll_s=0.2,
            )
        )
        processes.append(
            start_until_ready(
                [
                    prometheus_bin,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={root / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{prometheus_port}",
                ],
                root / "prometheus.log",
                http_ok(f"{prometheus_url}/-/ready"),
                READY_TIMEOUT_S,
                poll_s=0.2,
            )
        )
        yield gateway_url, prometheus_url
    finally:
        for process in reversed(processes):
            stop_process_group(process, timeout_s=10)


def query_until(prometheus_url: str, promql: str, expected: float) -> float:
    """Poll an instant query (bounded) until it returns one series equal to `expected`; return its value."""
    deadline = time.monotonic() + QUERY_TIMEOUT_S
    last = None
    while time.monotonic() < deadline:
        body = requests.get(f"{prometheus_url}/api/v1/query", params={"query": promql}, timeout=5).json()
        assert body["status"] == "success", body
        last = body["data"]["result"]
        if len(last) == 1 and float(last[0]["value"][1]) == expected:
            return expected
        time.sleep(0.5)
    pytest.fail(f"{promql} did not become {expected} within {QUERY_TIMEOUT_S}s; last result: {last}")


def unique_namespace() -> str:
    """Tests share the servers; a namespace of their own keeps their series apart."""
    return f"ns-{uuid.uuid4().hex[:8]}"


@pytest.mark.slow
def test_pushed_metrics_reach_the_pushgateway_and_prometheus(monitoring, tmp_path):
    gateway_url, prometheus_url = monitoring
    namespace = unique_namespace()
    metrics = sample_metrics(namespace, generated=120)
    metrics.observe_stage(namespace, "p", "dense", "vllm", 30.0, 80)

    result = publish(metrics, tmp_path, {PUSHGATEWAY_URL_ENV: gateway_url}, grouping(namespace))

    assert result.push_error is None and result.pushed_to == gateway_url
    gateway = samples_by_name(requests.get(f"{gateway_url}/metrics", timeout=5).text)
    assert (
        value_of(gateway, "medicalkg_embeddings_generated_total", namespace=namespace, job="medkg_assets")
        == 200
    )
    selector = f'namespace="{namespace}",profile="p",stage="dense"'
    query_until(prometheus_url, f"medicalkg_embeddings_generated_total{{{selector}}}", 200)
    query_until(prometheus_url, f"medicalkg_embedding_duration_seconds_count{{{selector}}}", 2)
    query_until(prometheus_url, f'medicalkg_embedding_duration_seconds_bucket{{{selector},le="10"}}', 1)


@pytest.mark.slow
def test_failures_are_counted_by_error_type_in_prometheus(monitoring, tmp_path):
    gateway_url, prometheus_url = monitoring
    namespace = unique_namespace()
    metrics = PipelineMetrics()
    metrics.count_failure(namespace, "p", "dense", "GpuNotAvailableError")
    metrics.count_failure(namespace, "p", "dense", "GpuNotAvailableError")
    metrics.count_failure(namespace, "p", "dense", "TimeoutError")

    assert (
        publish(metrics, tmp_path, {PUSHGATEWAY_URL_ENV: gateway_url}, grouping(namespace)).push_error is None
    )

    failures = f'medicalkg_embedding_failures_total{{namespace="{namespace}",stage="dense"'
    query_until(prometheus_url, failures + ',error_type="GpuNotAvailableError"}', 2)
    query_until(prometheus_url, failures + ',error_type="TimeoutError"}', 1)


@pytest.mark.slow
def test_cross_tenant_attempts_reach_prometheus(monitoring, tmp_path):
    gateway_url, prometheus_url = monitoring
    namespace = unique_namespace()
    metrics = PipelineMetrics()
    for _ in range(3):
        metrics.count_cross_tenant(namespace, "tenant-b")

    assert (
        publish(metrics, tmp_path, {PUSHGATEWAY_URL_ENV: gateway_url}, grouping(namespace)).push_error is None
    )

    query_until(
        prometheus_url,
        f'medicalkg_cross_tenant_access_attempts_total{{namespace="{namespace}",tenant="tenant-b"}}',
        3,
    )


@pytest.mark.slow
def test_rerun_push_replaces_the_groups_values(monitoring, tmp_path):
    gateway_url, prometheus_url = monitoring
    namespace = unique_namespace()
    environ = {PUSHGATEWAY_URL_ENV: gateway_url}
    publish(sample_metrics(namespace, generated=120), tmp_path, environ, grouping(namespace))
    selector = f'medicalkg_embeddings_generated_total{{namespace="{namespace}",stage="dense"}}'
    query_until(prometheus_url, selector, 120)

    publish(sample_metrics(namespace, generated=5), tmp_path, environ, grouping(namespace))

    query_until(prometheus_url, selector, 5)


@pytest.mark.slow
def test_a_pipeline_run_and_a_refused_tenant_show_up_in_prometheus(monitoring, config_dir, monkeypatch):
    """The operator's view: a real run's stage metrics and a cross-tenant refusal, queried back."""
    from dagster import DagsterInstance, materialize

    from medkg_assets.orchestration.partitions import register_namespaces
    from medkg_assets_tests.conftest import current_settings
    from medkg_assets_tests.pipeline import AssetSelection, definitions, index, ingest, metadata

    gateway_url, prometheus_url = monitoring
    monkeypatch.setenv(PUSHGATEWAY_URL_ENV, gateway_url)
    with DagsterInstance.ephemeral() as instance:
        register_namespaces(instance, current_settings().namespaces)
        ingest(instance, "tiny")
        dense = index(instance, "tiny", "minilm_cpu", selection=AssetSelection.keys("dense_embeddings"))
        generated = metadata(dense, "dense_embeddings")["embeddings_generated"]
        defs = definitions()  # its telemetry resource takes the Pushgateway URL from the environment
        refused = materialize(
            [defs.get_assets_def("source_documents"), defs.get_assets_def("chunks")],
            instance=instance,
            partition_key="tiny",
            tags={"medkg/tenant": "intruder"},
            raise_on_error=False,
            resources={"telemetry": defs.resources["telemetry"]},
        )
    assert generated > 0 and not refused.success
    query_until(
        prometheus_url,
        'medicalkg_embeddings_generated_total{namespace="tiny",profile="minilm_cpu",stage="dense"}',
        generated,
    )
    query_until(
        prometheus_url,
        'medicalkg_embedding_duration_seconds_count{namespace="tiny",profile="minilm_cpu",stage="dense"}',
        1,
    )
    query_until(
        prometheus_url, 'medicalkg_cross_tenant_access_attempts_total{namespace="tiny",tenant="intruder"}', 1
    )
