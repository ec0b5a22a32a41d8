"""Monitoring files under deploy/monitoring/: promtool accepts the rules and their unit tests, alerts and
dashboard panels use only metrics the pipeline exports, and the unit tests can fail."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from medkg_assets.settings import PROJECT_ROOT
from medkg_assets_tests.processes import require_binary

MONITORING = PROJECT_ROOT / "deploy" / "monitoring"
RULES = MONITORING / "embeddings.rules.yaml"
RULE_TESTS = MONITORING / "embeddings.rules.test.yaml"
DASHBOARD = MONITORING / "grafana" / "embeddings-dashboard.json"

EXPORTED_METRICS = {
    "medicalkg_embedding_duration_seconds",
    "medicalkg_embeddings_generated_total",
    "medicalkg_embedding_cache_hits_total",
    "medicalkg_embedding_cache_misses_total",
    "medicalkg_embedding_failures_total",
    "medicalkg_cross_tenant_access_attempts_total",
    "medicalkg_embeddings_per_second",
    "medicalkg_retrieval_recall_at_10",
    "medicalkg_retrieval_recall_at_10_floor",
}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
GPU_METRICS = {"DCGM_FI_DEV_GPU_UTIL"}
EXPECTED_ALERTS = {
    "EmbeddingGpuUnavailable",
    "EmbeddingThroughputLow",
    "EmbeddingLatencyHigh",
    "EmbeddingFailuresGrowing",
    "EmbeddingCacheRatioLow",
    "RecallDrop",
}
# Words of a panel title that identify each required panel.
REQUIRED_PANELS = {
    "latency p95": ("latency", "p95"),
    "throughput": ("throughput",),
    "cache hit ratio": ("cache", "ratio"),
    "failures": ("failures",),
    "GPU utilisation": ("gpu",),
}
PANEL_FIELDS = ("id", "title", "type", "gridPos", "datasource", "targets")
# Stand-ins for Grafana's variables so dashboard queries can be parsed by promtool.
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "$namespace": ".*",
    "$profile": ".*",
}

METRIC_NAME = re.compile(r"\b(?:medicalkg_\w+|DCGM_\w+)")
RECORDED_NAME = re.compile(r"\bmedicalkg:[\w:]+")


def promtool() -> str:
    """Path to promtool; skip without it, but fail in CI where it must be installed."""
    return require_binary("promtool", "it comes with the Debian package `prometheus`")


def run_promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def alerts() -> dict[str, dict]:
    return {rule["alert"]: rule for rule in rules() if "alert" in rule}


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def panels() -> list[dict]:
    return dashboard()["panels"]


def is_exported(name: str) -> bool:
    """A name the pipeline exports, counting the series a histogram expands into."""
    base = next((name.removesuffix(s) for s in HISTOGRAM_SUFFIXES if name.endswith(s)), name)
    return name in EXPORTED_METRICS | GPU_METRICS or base in EXPORTED_METRICS


def unknown_metrics(expr: str) -> set[str]:
    return {name for name in METRIC_NAME.findall(expr) if not is_exported(name)}


def test_promtool_accepts_the_rules():
    result = run_promtool("check", "rules", RULES.name, cwd=MONITORING)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass():
    result = run_promtool("test", "rules", RULE_TESTS.name, cwd=MONITORING)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_fail_when_the_throughput_threshold_changes(tmp_path):
    rules_text = RULES.read_text()
    assert "medicalkg_embeddings_per_second < 500" in rules_text
    (tmp_path / RULES.name).write_text(rules_text.replace("per_second < 500", "per_second < 100"))
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)

    result = run_promtool("test", "rules", RULE_TESTS.name, cwd=tmp_path)

    assert result.returncode != 0
    assert "EmbeddingThroughputLow" in result.stdout + result.stderr


def test_rules_declare_exactly_the_six_embedding_alerts():
    assert set(alerts()) == EXPECTED_ALERTS
    assert len([rule for rule in rules() if "alert" in rule]) == len(EXPECTED_ALERTS)


def test_every_alert_has_severity_team_summary_and_runbook():
    for name, alert in alerts().items():
        assert alert["labels"]["severity"] in {"critical", "warning"}, name
        assert alert["labels"]["team"] == "medkg", name
        assert alert["annotations"]["summary"].strip(), name
        assert alert["annotations"]["runbook_url"].endswith(f"#{name.lower()}"), name


def test_gpu_and_recall_alerts_are_critical():
    assert alerts()["EmbeddingGpuUnavailable"]["labels"]["severity"] == "critical"
    assert alerts()["RecallDrop"]["labels"]["severity"] == "critical"


def test_rule_expressions_use_only_exported_metrics():
    for rule in rules():
        name = rule.get("alert") or rule["record"]
        assert not unknown_metrics(rule["expr"]), f"{name}: unknown metric(s) {unknown_metrics(rule['expr'])}"


def test_alerts_use_only_recording_rules_defined_in_the_file():
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    for name, alert in alerts().items():
        assert set(RECORDED_NAME.findall(alert["expr"])) <= recorded, name


def test_every_alert_reads_an_exported_metric_directly_or_through_recording_rules():
    recorded = {rule["record"]: rule["expr"] for rule in rules() if "record" in rule}
    for name, alert in alerts().items():
        expr = alert["expr"]
        while RECORDED_NAME.search(expr):
            expr = RECORDED_NAME.sub(lambda match: f"({recorded[match.group()]})", expr)
        assert METRIC_NAME.search(expr), name


def test_dashboard_has_its_title_uid_and_template_variables():
    board = dashboard()
    assert board["title"] == "Embeddings & Representation"
    assert board["uid"] == "medkg-embeddings"
    variables = {var["name"]: var for var in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("namespace", "profile"):
        assert "label_values(" in variables[name]["definition"], name


def test_dashboard_panel_ids_are_unique():
    ids = [panel["id"] for panel in panels()]
    assert len(ids) == len(set(ids))


def test_every_panel_has_the_required_fields_and_a_prometheus_target():
    for panel in panels():
        missing = [field for field in PANEL_FIELDS if field not in panel]
        assert not missing, f"panel {panel.get('title')}: missing {missing}"
        assert set(panel["gridPos"]) >= {"h", "w", "x", "y"}, panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip() and target["refId"], panel["title"]


def test_dashboard_queries_use_only_exported_metrics():
    for panel in panels():
        for target in panel["targets"]:
            expr = target["expr"]
            assert METRIC_NAME.search(expr), f"{panel['title']}: no known metric in {expr}"
            assert not unknown_metrics(expr), f"{panel['title']}: unknown metric(s) {unknown_metrics(expr)}"


def test_dashboard_has_the_required_panels():
    titles = [panel["title"].lower() for panel in panels()]
    for required, words in REQUIRED_PANELS.items():
        assert any(all(word in title for word in words) for title in titles), f"no {required} panel"


def test_dashboard_queries_parse_as_promql(tmp_path):
    """promtool has no expression checker, so the queries go into a throwaway rule file."""
    records = []
    for panel in panels():
        for target in panel["targets"]:
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            records.append({"record": f"dashboard:panel{panel['id']}:{target['refId']}", "expr": expr})
    (tmp_path / "dashboard.rules.yaml").write_text(
        yaml.safe_dump({"groups": [{"name": "d", "rules": records}]})
    )

    result = run_promtool("check", "rules", "dashboard.rules.yaml", cwd=tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
