"""GPU placement: only GPU profiles get `nvidia.com/gpu`, node selectors and tolerations."""

import json

from medkg_assets.automation.k8s import K8S_CONFIG_TAG, gpu_k8s_config, profile_run_tags
from medkg_assets.settings import get_config


def test_gpu_profile_gets_limits_selector_and_tolerations():
    config = gpu_k8s_config(get_config().profiles.get("qwen3_vllm"))
    assert config["container_config"]["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    assert "nvidia.com/gpu.product" in config["pod_spec_config"]["node_selector"]
    assert config["pod_spec_config"]["tolerations"][0]["key"] == "nvidia.com/gpu"


def test_cpu_profile_gets_no_gpu_config():
    profile = get_config().profiles.get("minilm_cpu")
    assert gpu_k8s_config(profile) == {}
    assert K8S_CONFIG_TAG not in profile_run_tags(profile)


def test_run_tags_carry_the_serialised_config():
    tags = profile_run_tags(get_config().profiles.get("bge_m3"))
    assert (
        json.loads(tags[K8S_CONFIG_TAG])["container_config"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    )
    assert tags["medkg/profile"] == "bge_m3"


def test_index_job_runs_carry_the_profile_pod_config_per_partition():
    from medkg_assets.definitions import defs

    config = defs.resolve_job_def("index_job").partitioned_config
    gpu = config.get_tags_for_partition_key("medquad_sample|qwen3_vllm")
    cpu = config.get_tags_for_partition_key("medquad_sample|minilm_cpu")
    assert "nvidia.com/gpu" in gpu[K8S_CONFIG_TAG] and K8S_CONFIG_TAG not in cpu
