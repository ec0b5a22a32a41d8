"""GPU placement: only GPU profiles get `nvidia.com/gpu`, node selectors and tolerations."""

import json

import pytest

from medkg_assets.automation.k8s import GPU_STEPS, K8S_CONFIG_TAG, gpu_k8s_config, profile_run_tags
from medkg_assets.definitions import build_definitions
from medkg_assets.orchestration.partitions import build_partitions
from medkg_assets_tests.conftest import current_settings


def test_gpu_profile_gets_limits_selector_and_tolerations():
    config = gpu_k8s_config(current_settings().profiles.get("qwen3_vllm"))
    assert config["container_config"]["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    assert "nvidia.com/gpu.product" in config["pod_spec_config"]["node_selector"]
    assert config["pod_spec_config"]["tolerations"][0]["key"] == "nvidia.com/gpu"


def test_cpu_profile_gets_no_gpu_config():
    profile = current_settings().profiles.get("minilm_cpu")
    assert gpu_k8s_config(profile) == {}
    assert K8S_CONFIG_TAG not in profile_run_tags(profile)


def test_run_tags_carry_the_serialised_config():
    tags = profile_run_tags(current_settings().profiles.get("bge_m3"))
    assert (
        json.loads(tags[K8S_CONFIG_TAG])["container_config"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    )
    assert tags["medkg/profile"] == "bge_m3"


def test_index_job_runs_carry_the_profile_pod_config_per_partition():
    defs = build_definitions(current_settings())
    config = defs.resolve_job_def("index_job").partitioned_config
    gpu = config.get_tags_for_partition_key("medquad_sample|qwen3_vllm")
    cpu = config.get_tags_for_partition_key("medquad_sample|minilm_cpu")
    assert "nvidia.com/gpu" in gpu[K8S_CONFIG_TAG] and K8S_CONFIG_TAG not in cpu


def k8s_index_job():
    from dagster import Definitions

    from medkg_assets.automation.jobs import index_job_for

    settings = current_settings()
    defs = build_definitions(settings)
    return Definitions(
        assets=defs.assets,
        asset_checks=defs.asset_checks,
        jobs=[index_job_for(settings, build_partitions(settings), "k8s")],
        resources=defs.resources,
    ).resolve_job_def("index_job")


def step_pod(op_name: str, run_config: dict):
    """The Kubernetes Job that dagster-k8s's own builder makes for one step of the run."""
    from dagster_k8s.job import DagsterK8sJobConfig, UserDefinedDagsterK8sConfig, construct_dagster_k8s_job

    per_step = run_config.get("execution", {}).get("config", {}).get("per_step_k8s_config", {})
    return construct_dagster_k8s_job(
        DagsterK8sJobConfig(
            job_image="registry.example.internal/medkg/medkg-assets:0.1.0",
            dagster_home="/opt/dagster/dagster_home",
        ),
        args=["dagster", "api", "execute_step"],
        job_name=f"dagster-step-{op_name.replace('_', '-')}",
        user_defined_k8s_config=UserDefinedDagsterK8sConfig.from_dict(per_step.get(op_name, {})),
    ).spec.template.spec


def test_k8s_executor_places_gpu_steps_of_a_gpu_profile_on_gpu_nodes():
    from dagster import validate_run_config

    job = k8s_index_job()
    assert job.executor_def.name == "k8s"
    run_config = job.partitioned_config.get_run_config_for_partition_key("medquad_sample|qwen3_vllm")
    validate_run_config(job, run_config)
    # dagster-k8s looks a step's config up by its op's name: one pod per shard step of the encoders.
    ops = {node.name for node in job.all_node_defs}
    assert set(GPU_STEPS) <= ops
    for gpu_step in GPU_STEPS:
        pod = step_pod(gpu_step, run_config)
        assert pod.containers[0].resources.limits == {"nvidia.com/gpu": "1"}
        assert pod.node_selector == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
        assert [t.key for t in pod.tolerations] == ["nvidia.com/gpu"]
    cpu_steps = ("dense_embeddings_plan", "dense_embeddings_publish", "sparse_vectors_plan", "faiss_index")
    for cpu_step in (*cpu_steps, "sparse_index", "opensearch_mapping", "processing_summary"):
        assert cpu_step in ops
        pod = step_pod(cpu_step, run_config)
        assert not (pod.containers[0].resources and pod.containers[0].resources.limits)
        assert not pod.node_selector and not pod.tolerations


def test_k8s_run_pod_of_a_gpu_profile_stays_cpu_only():
    job = k8s_index_job()
    assert K8S_CONFIG_TAG not in job.partitioned_config.get_tags_for_partition_key(
        "medquad_sample|qwen3_vllm"
    )


def test_cpu_profile_gets_no_gpu_anywhere_on_k8s():
    run_config = k8s_index_job().partitioned_config.get_run_config_for_partition_key(
        "medquad_sample|minilm_cpu"
    )
    pod = step_pod("dense_embeddings_shard", run_config)
    assert not pod.node_selector and not (pod.containers[0].resources and pod.containers[0].resources.limits)


def test_grouped_backfill_runs_are_refused_on_kubernetes_and_drop_placement_locally():
    from medkg_assets.automation.jobs import index_job_for
    from medkg_assets.config import ConfigError

    settings = current_settings()
    partitions = build_partitions(settings)
    with pytest.raises(ConfigError, match="backfill_partitions_per_run: 1"):
        index_job_for(settings, partitions, "k8s", partitions_per_run=2)
    assert index_job_for(settings, partitions, "multiprocess", partitions_per_run=2).config is None
    assert index_job_for(settings, partitions, "multiprocess", partitions_per_run=1).config is not None
