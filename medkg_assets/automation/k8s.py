"""Kubernetes placement for GPU stages, in the shape dagster-k8s reads from `dagster-k8s/config`."""

from __future__ import annotations

import json
from typing import Any

from medkg_assets.config.profiles import EmbeddingProfile

K8S_CONFIG_TAG = "dagster-k8s/config"
# The ops whose steps need the profile's GPU: one step per shard for the encoders (assets/sharded.py).
GPU_STEPS = (
    "dense_embeddings_shard",
    "sparse_vectors_shard",
    "adapted_reranker",
    "fusion_config",
    "rerank_manifest",
)
EXECUTORS = ("multiprocess", "k8s")


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


def profile_run_tags(profile: EmbeddingProfile, executor: str = "multiprocess") -> dict[str, str]:
    """Run tags for a run of `profile`. With the multiprocess executor every step runs in the run
    pod, so a GPU profile puts its GPU on the run pod; with the k8s executor the run pod only
    orchestrates and the GPU goes to the GPU steps (`index_run_config`)."""
    tags = {"medkg/profile": profile.name, "medkg/fingerprint": profile.fingerprint}
    config = gpu_k8s_config(profile)
    if config and executor != "k8s":
        tags[K8S_CONFIG_TAG] = json.dumps(config, sort_keys=True)
    return tags


def per_step_gpu_config(profile: EmbeddingProfile) -> dict[str, dict[str, Any]]:
    """`per_step_k8s_config` for dagster-k8s's `k8s_job_executor`: GPU steps only, GPU profiles only."""
    config = gpu_k8s_config(profile)
    return {step: config for step in GPU_STEPS} if config else {}


def index_run_config(profile: EmbeddingProfile, executor: str) -> dict[str, Any]:
    """Run config of an index run: one pod per step on Kubernetes, GPU placement on GPU steps."""
    if executor != "k8s":
        return {}
    return {"execution": {"config": {"per_step_k8s_config": per_step_gpu_config(profile)}}}
