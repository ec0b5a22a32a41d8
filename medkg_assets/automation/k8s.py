"""Kubernetes placement for GPU stages, in the shape dagster-k8s reads from `dagster-k8s/config`."""

from __future__ import annotations

import json
from typing import Any

from medkg_assets.config.profiles import EmbeddingProfile

K8S_CONFIG_TAG = "dagster-k8s/config"
GPU_POOL = "gpu"
GPU_STAGE_TAG = "medkg/gpu_stage"


def gpu_k8s_config(profile: EmbeddingProfile) -> dict[str, Any]:
    """`nvidia.com/gpu` limits, node selector and tolerations; empty when the profile needs no GPU."""
    if not profile.require_gpu:
        return {}
    gpus = str(profile.gpu.count)
    config: dict[str, Any] = {
        "container_config": {
            "resources": {"limits": {"nvidia.com/gpu": gpus}, "requests": {"nvidia.com/gpu": gpus}}
        },
        "pod_spec_config": {},
    }
    if profile.gpu.node_selector:
        config["pod_spec_config"]["node_selector"] = dict(profile.gpu.node_selector)
    if profile.gpu.tolerations:
        config["pod_spec_config"]["tolerations"] = [dict(t) for t in profile.gpu.tolerations]
    return config


def profile_run_tags(profile: EmbeddingProfile) -> dict[str, str]:
    """Run tags for a run of `profile`: its name, and the GPU pod config when it needs one."""
    tags = {"medkg/profile": profile.name, "medkg/fingerprint": profile.fingerprint}
    config = gpu_k8s_config(profile)
    if config:
        tags[K8S_CONFIG_TAG] = json.dumps(config, sort_keys=True)
    return tags
