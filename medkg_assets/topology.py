"""Names of the asset graph that jobs, assets, Kubernetes placement and the CLI share.

Plain strings, no Dagster: the asset factories use them to declare groups, pools and tags, the
jobs to select by group, the CLI and serving to look up check results by key.
"""

from __future__ import annotations

INGEST_GROUP = "ingest"
DENSE_GROUP = "dense"
SPARSE_GROUP = "sparse"
RETRIEVAL_GROUP = "retrieval"
SUMMARY_GROUP = "summary"
SERVING_GROUP = "serving"

# Dagster concurrency pool of every step that may hold a GPU (limit in dagster.yaml).
GPU_POOL = "gpu"
# Op tag naming a GPU stage: Kubernetes placement gives these steps a GPU on GPU profiles.
GPU_STAGE_TAG = "medkg/gpu_stage"

# (asset, check) of every release check a promotion needs passed for the namespace × profile.
RELEASE_CHECKS: tuple[tuple[str, str], ...] = (
    ("dense_embeddings", "dense_hash_parity"),
    ("faiss_index", "dense_dimension_matches_profile"),
    ("faiss_index", "faiss_self_recall"),
    ("faiss_index", "faiss_index_counts_match_chunks"),
    ("sparse_vectors", "sparse_vectors_respect_profile_limits"),
    ("sparse_index", "sparse_index_document_counts"),
    ("opensearch_mapping", "opensearch_mapping_matches_profile"),
    ("rerank_manifest", "recall_at_10"),
)
