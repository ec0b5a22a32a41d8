"""Deployment files under deploy/: they parse, Kubernetes and Dagster accept them, and they agree with
the embedding profiles. Offline: nothing here talks to a cluster."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from dagster._config import validate_config
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import dagster_instance_config
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster_k8s import K8sRunLauncher
from dagster_k8s.models import k8s_model_from_dict, k8s_snake_case_dict
from kubernetes.client import ApiClient, V1Container, V1JobSpec

from medkg_assets.config import load_profiles
from medkg_assets.settings import PROJECT_ROOT, Settings

DEPLOY = PROJECT_ROOT / "deploy"
K8S = DEPLOY / "k8s"
OVERLAYS = K8S / "overlays"
HELM_VALUES = DEPLOY / "helm" / "values.yaml"
INSTANCE_DIR = DEPLOY / "dagster"
PG_ENV = {
    "DAGSTER_PG_USERNAME": "dagster",
    "DAGSTER_PG_PASSWORD": "not-a-secret",
    "DAGSTER_PG_HOST": "localhost",
    "DAGSTER_PG_DB": "dagster",
}
# Kinds whose objects carry no `spec` (configuration, not workloads).
KINDS_WITHOUT_SPEC = {"Namespace", "ConfigMap", "Secret", "ServiceAccount", "Kustomization", "Component"}
KUBERNETES_MODELS = {"Deployment": "V1Deployment", "Service": "V1Service", "Namespace": "V1Namespace"}
EXPECTED_REPLICAS = {
    "staging": {"vllm-embeddings": 1, "legacy-embedding-worker": 0},
    "production": {"vllm-embeddings": 2, "legacy-embedding-worker": 0},
    "rollback": {"vllm-embeddings": 0, "legacy-embedding-worker": 2},
}


def yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in {".yaml", ".yml"} and p.is_file())


def load_docs(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def manifests() -> list[tuple[Path, dict]]:
    """Every Kubernetes object under deploy/ (documents with apiVersion and kind)."""
    return [
        (path, doc)
        for path in yaml_files()
        for doc in load_docs(path)
        if isinstance(doc, dict) and "apiVersion" in doc and "kind" in doc
    ]


def manifest(kind: str, name: str) -> dict:
    found = [doc for _, doc in manifests() if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def container(deployment: dict) -> dict:
    return deployment["spec"]["template"]["spec"]["containers"][0]


def env_of(entries: list[dict]) -> dict[str, str]:
    return {entry["name"]: entry["value"] for entry in entries if "value" in entry}


def deserialize(doc: dict, model: str):
    class Response:
        data = json.dumps(doc)

    with ApiClient() as api:
        return api.deserialize(Response(), model)


def helm_values() -> dict:
    return yaml.safe_load(HELM_VALUES.read_text())


def run_k8s_config() -> dict:
    return helm_values()["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]


def user_deployment() -> dict:
    deployments = helm_values()["dagster-user-deployments"]["deployments"]
    return next(d for d in deployments if d["name"] == "medkg-assets")


def kustomize_resources(directory: Path) -> list[Path]:
    """The files a kustomization pulls in, resolved recursively through directory bases."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    files: list[Path] = []
    for entry in kustomization.get("resources", []):
        target = (directory / entry).resolve()
        files.extend(kustomize_resources(target) if target.is_dir() else [target])
    return files


def overlay_replicas(overlay: Path) -> dict[str, int]:
    """Deployment replicas after the overlay's `replicas:` overrides are applied to its bases."""
    replicas = {
        doc["metadata"]["name"]: doc["spec"].get("replicas", 1)
        for path in kustomize_resources(overlay)
        for doc in load_docs(path)
        if doc.get("kind") == "Deployment"
    }
    for override in yaml.safe_load((overlay / "kustomization.yaml").read_text()).get("replicas", []):
        assert override["name"] in replicas, f"{overlay.name}: no Deployment {override['name']} to scale"
        replicas[override["name"]] = override["count"]
    return replicas


def test_every_yaml_file_under_deploy_parses():
    assert yaml_files(), "no YAML under deploy/"
    for path in yaml_files():
        assert load_docs(path), f"{path} is empty"


def test_kubernetes_manifests_have_api_version_kind_metadata_and_spec():
    assert manifests()
    for path, doc in manifests():
        where = f"{path.relative_to(PROJECT_ROOT)} ({doc['kind']})"
        assert doc["apiVersion"] and doc["kind"], where
        if doc["kind"] in KINDS_WITHOUT_SPEC:
            continue
        assert doc.get("metadata", {}).get("name"), f"{where}: no metadata.name"
        assert doc.get("spec"), f"{where}: no spec"


def test_vllm_deployment_requests_a_gpu_and_probes_health():
    deployment = manifest("Deployment", "vllm-embeddings")
    assert deployment["metadata"]["namespace"] == "embeddings"
    pod = deployment["spec"]["template"]["spec"]
    vllm = container(deployment)
    assert vllm["image"].startswith("vllm/vllm-openai:v"), "pin a released vLLM image"
    assert vllm["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert vllm["resources"]["requests"]["nvidia.com/gpu"] == 1
    assert {"cpu", "memory"} <= set(vllm["resources"]["limits"]) & set(vllm["resources"]["requests"])
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    port = vllm["ports"][0]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        http = vllm[probe]["httpGet"]
        assert http["path"] == "/health", probe
        assert http["port"] in (8000, port["name"]) and port["containerPort"] == 8000, probe
        assert vllm[probe]["periodSeconds"] > 0 and vllm[probe]["failureThreshold"] >= 3, probe


def test_vllm_serves_the_production_profile_under_its_served_model_name():
    profile = load_profiles(PROJECT_ROOT / "config" / "embedding_profiles.yaml").get("qwen3_vllm")
    deployment = manifest("Deployment", "vllm-embeddings")
    args = container(deployment)["args"]
    flags = dict(zip(args[::2], args[1::2], strict=True))
    assert flags["--model"] == profile.dense.model == "Qwen/Qwen3-Embedding-8B"
    assert flags["--served-model-name"] == profile.dense.served_model_name == "single_vector.qwen3.4096.v1"
    assert (flags["--runner"], flags["--convert"], flags["--port"]) == ("pooling", "embed", "8000")
    assert int(flags["--max-model-len"]) >= profile.dense.max_tokens
    pod = deployment["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == profile.gpu.node_selector
    assert pod["tolerations"] == [dict(t) for t in profile.gpu.tolerations]
    assert container(deployment)["resources"]["limits"]["nvidia.com/gpu"] == profile.gpu.count


@pytest.mark.parametrize(
    "path,doc",
    [(p, d) for p, d in manifests() if d["kind"] in KUBERNETES_MODELS],
    ids=lambda v: v.name if isinstance(v, Path) else f"{v['kind']}-{v['metadata']['name']}",
)
def test_kubernetes_client_deserializes_each_manifest(path, doc):
    obj = deserialize(doc, KUBERNETES_MODELS[doc["kind"]])
    assert obj.metadata.name == doc["metadata"]["name"]
    assert obj.kind == doc["kind"]


def test_deserialized_vllm_deployment_exposes_gpu_limit_and_probes():
    deployment = deserialize(manifest("Deployment", "vllm-embeddings"), "V1Deployment")
    vllm = deployment.spec.template.spec.containers[0]
    assert vllm.resources.limits["nvidia.com/gpu"] == "1"
    assert vllm.readiness_probe.http_get.path == vllm.liveness_probe.http_get.path == "/health"
    assert vllm.startup_probe.failure_threshold * vllm.startup_probe.period_seconds >= 600
    assert deployment.spec.template.spec.tolerations[0].key == "nvidia.com/gpu"


def test_service_routes_vllm_url_to_the_vllm_pods():
    service = manifest("Service", "vllm-embeddings")
    deployment = manifest("Deployment", "vllm-embeddings")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["metadata"]["namespace"] == "embeddings"
    assert service["spec"]["selector"].items() <= labels.items()
    assert [p["port"] for p in service["spec"]["ports"]] == [8000]
    url = "http://vllm-embeddings.embeddings.svc.cluster.local:8000"
    assert env_of(user_deployment()["env"])["VLLM_URL"] == url
    assert env_of(run_k8s_config()["containerConfig"]["env"])["VLLM_URL"] == url


def test_legacy_worker_is_off_by_default_and_runs_the_cpu_profile():
    deployment = manifest("Deployment", "legacy-embedding-worker")
    worker = container(deployment)
    assert deployment["spec"]["replicas"] == 0
    assert "nvidia.com/gpu" not in worker["resources"]["limits"]
    assert {"cpu", "memory"} <= set(worker["resources"]["requests"])
    assert worker["readinessProbe"] and worker["livenessProbe"]
    env = env_of(worker["env"])
    assert env["EMBEDDINGS_PROFILE"] == "minilm_cpu"
    # The project's own swap rules must let this environment start (production needs SWAPPABLE).
    config = Settings(env)
    assert config.environment.name == "production"
    assert config.profile.name == "minilm_cpu" and not config.profile.require_gpu


@pytest.mark.parametrize("overlay", sorted(EXPECTED_REPLICAS))
def test_each_overlay_references_existing_files(overlay):
    directory = OVERLAYS / overlay
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    assert kustomization["resources"], overlay
    for entry in kustomization["resources"]:
        target = directory / entry
        assert target.exists(), f"{overlay}: missing resource {entry}"
        assert target.is_file() or (target / "kustomization.yaml").is_file(), entry
    for patch in kustomization.get("patches", []) + kustomization.get("patchesStrategicMerge", []):
        if isinstance(patch, str) or "path" in patch:
            path = patch if isinstance(patch, str) else patch["path"]
            assert (directory / path).is_file(), f"{overlay}: missing patch {path}"
    for path in kustomize_resources(directory):
        assert path.is_file(), f"{overlay}: missing {path}"


@pytest.mark.parametrize("overlay", sorted(EXPECTED_REPLICAS))
def test_overlay_sets_the_replicas_of_its_stage(overlay):
    assert overlay_replicas(OVERLAYS / overlay) == EXPECTED_REPLICAS[overlay]


def test_rollback_overlay_scales_vllm_to_zero_and_the_legacy_worker_up():
    replicas = overlay_replicas(OVERLAYS / "rollback")
    assert replicas["vllm-embeddings"] == 0
    assert replicas["legacy-embedding-worker"] > 0


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
@pytest.mark.parametrize("overlay", sorted(EXPECTED_REPLICAS))
def test_kubectl_kustomize_renders_each_overlay(overlay):
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(OVERLAYS / overlay)], capture_output=True, text=True, timeout=60
    )
    assert rendered.returncode == 0, rendered.stderr
    docs = [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]
    replicas = {d["metadata"]["name"]: d["spec"]["replicas"] for d in docs if d["kind"] == "Deployment"}
    assert replicas == EXPECTED_REPLICAS[overlay]


def test_helm_values_use_the_k8s_run_launcher_and_the_medkg_code_location():
    values = helm_values()
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert run_k8s_config()["containerConfig"]["resources"]["limits"]
    deployment = user_deployment()
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "medkg_assets.definitions"]
    assert deployment["port"] == 3030
    assert {"name": "medkg-opensearch"} in deployment["envSecrets"]
    assert values["postgresql"]["enabled"] is False and values["postgresql"]["postgresqlHost"]
    assert values["global"]["postgresqlSecretName"] and values["generatePostgresqlPasswordSecret"] is False
    daemon = values["dagsterDaemon"]
    assert daemon["enabled"] and daemon["runMonitoring"]["enabled"] and daemon["runRetries"]["enabled"]


def test_run_pod_defaults_convert_to_kubernetes_models_with_dagster_k8s():
    config = run_k8s_config()
    container_config = k8s_snake_case_dict(V1Container, config["containerConfig"])
    run_container = k8s_model_from_dict(V1Container, {"name": "dagster", **container_config})
    assert run_container.resources.requests["memory"] == "8Gi"
    assert k8s_snake_case_dict(V1JobSpec, config["jobSpecConfig"])["backoff_limit"] == 0


def test_helm_user_deployment_env_resolves_the_production_profile():
    env = env_of(user_deployment()["env"])
    config = Settings(env)
    assert config.environment.name == "production"
    assert config.profile.name == "qwen3_vllm"
    args = container(manifest("Deployment", "vllm-embeddings"))["args"]
    assert config.profile.dense.served_model_name == args[args.index("--served-model-name") + 1]


def test_helm_values_keep_run_limits_under_concurrency_like_the_instance_yaml():
    values = helm_values()
    queued = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert queued.get("maxConcurrentRuns") is None and not queued.get("tagConcurrencyLimits")
    instance = yaml.safe_load((INSTANCE_DIR / "dagster.yaml").read_text())
    runs, pools = values["concurrency"]["runs"], values["concurrency"]["pools"]
    assert runs["maxConcurrentRuns"] == instance["concurrency"]["runs"]["max_concurrent_runs"]
    assert runs["tagConcurrencyLimits"] == instance["concurrency"]["runs"]["tag_concurrency_limits"]
    assert pools["defaultLimit"] == instance["concurrency"]["pools"]["default_limit"] == 1
    monitoring = values["dagsterDaemon"]["runMonitoring"]
    # the chart renders these keys of runMonitoring into run_monitoring (configmap-instance.yaml)
    for chart_key, instance_key in (
        ("enabled", "enabled"),
        ("startTimeoutSeconds", "start_timeout_seconds"),
        ("cancelTimeoutSeconds", "cancel_timeout_seconds"),
        ("pollIntervalSeconds", "poll_interval_seconds"),
        ("maxResumeRunAttempts", "max_resume_run_attempts"),
        ("freeSlotsAfterRunEndSeconds", "free_slots_after_run_end_seconds"),
    ):
        assert monitoring[chart_key] == instance["run_monitoring"][instance_key], chart_key
    assert set(instance["run_monitoring"]) == {
        "enabled",
        "start_timeout_seconds",
        "cancel_timeout_seconds",
        "poll_interval_seconds",
        "max_resume_run_attempts",
        "free_slots_after_run_end_seconds",
    }
    assert values["dagsterDaemon"]["runRetries"]["maxRetries"] == instance["run_retries"]["max_retries"]


def test_dagster_instance_yaml_validates_with_dagsters_own_schema(monkeypatch):
    for name, value in PG_ENV.items():
        monkeypatch.setenv(name, value)
    config, custom_class = dagster_instance_config(str(INSTANCE_DIR))
    assert custom_class is None
    assert config["storage"]["postgres"]["postgres_db"]["password"] == {"env": "DAGSTER_PG_PASSWORD"}
    assert config["run_launcher"]["class"] == "K8sRunLauncher"
    assert config["run_monitoring"]["enabled"] and config["run_retries"]["enabled"]
    # the daemon gives back the `gpu` slots a finished (canceled, crashed) run still holds
    assert config["run_monitoring"]["free_slots_after_run_end_seconds"] > 0
    # The launcher and coordinator sections are free-form to the instance schema: check them too.
    launcher = validate_config(K8sRunLauncher.config_type(), config["run_launcher"]["config"])
    assert launcher.success, launcher.errors
    coordinator_config = config["run_coordinator"].get("config", {})
    coordinator = validate_config(QueuedRunCoordinator.config_type(), coordinator_config)
    assert coordinator.success, coordinator.errors


def test_instance_validation_refuses_run_limits_under_the_coordinator(tmp_path, monkeypatch):
    for name, value in PG_ENV.items():
        monkeypatch.setenv(name, value)
    instance = yaml.safe_load((INSTANCE_DIR / "dagster.yaml").read_text())
    instance["run_coordinator"]["config"] = {"max_concurrent_runs": 4}
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(instance))
    with pytest.raises(DagsterInvalidConfigError, match="incompatible with the `concurrency > runs`"):
        dagster_instance_config(str(tmp_path))
