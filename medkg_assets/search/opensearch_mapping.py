"""OpenSearch index template for one namespace × profile: rank_features + knn_vector + keywords."""

from __future__ import annotations

from typing import Any

from medkg_assets.config.profiles import EmbeddingProfile, HnswIndexSpec

DEFAULT_SPARSE_FIELD = "splade_terms"
DENSE_FIELD = "dense_vector"
KEYWORD_FIELDS = ("chunk_id", "doc_id", "tenant_id", "namespace", "profile", "fingerprint")


def index_name(namespace: str, profile: EmbeddingProfile) -> str:
    """Versioned index: `<namespace>-<profile>-<fingerprint prefix>` (OpenSearch wants lower case)."""
    return f"{namespace}-{profile.name}-{profile.fingerprint[:8]}".lower()


def read_alias(namespace: str) -> str:
    """The alias readers query; flipping it switches every reader at once."""
    return f"{namespace}-read".lower()


def template_name(namespace: str, profile: EmbeddingProfile) -> str:
    return f"{namespace}-{profile.name}".lower()


def feature_name(term: str) -> str:
    """rank_features keys may not contain '.' (object paths): escape '%' and '.' reversibly."""
    return term.replace("%", "%25").replace(".", "%2E")


def build_index_template(
    namespace: str,
    profile: EmbeddingProfile,
    sparse_field: str = DEFAULT_SPARSE_FIELD,
    shards: int = 1,
    replicas: int = 1,
) -> dict[str, Any]:
    """The composable index template the production cluster needs for this partition."""
    hnsw = profile.index if isinstance(profile.index, HnswIndexSpec) else HnswIndexSpec(type="hnsw")
    properties: dict[str, Any] = {name: {"type": "keyword"} for name in KEYWORD_FIELDS}
    properties.update(
        title={"type": "text"},
        text={"type": "text"},
        **{
            sparse_field: {"type": "rank_features", "positive_score_impact": True},
            DENSE_FIELD: {
                "type": "knn_vector",
                "dimension": profile.dense.dims,
                "method": {
                    "name": "hnsw",
                    "engine": "faiss",
                    "space_type": "innerproduct",
                    "parameters": {"m": hnsw.m, "ef_construction": hnsw.ef_construction},
                },
            },
        },
    )
    return {
        "index_patterns": [f"{template_name(namespace, profile)}-*"],
        "priority": 100,
        "template": {
            "settings": {
                "index": {
                    "number_of_shards": shards,
                    "number_of_replicas": replicas,
                    "knn": True,
                    "knn.algo_param.ef_search": hnsw.ef_search,
                }
            },
            "mappings": {"dynamic": "strict", "properties": properties},
        },
        "_meta": {
            "namespace": namespace,
            "profile": profile.name,
            "fingerprint": profile.fingerprint,
            "managed_by": "medkg-assets",
        },
    }


def chunk_document(
    chunk: dict,
    profile: EmbeddingProfile,
    sparse_terms: dict[str, float] | None,
    dense: list[float] | None,
    sparse_field: str = DEFAULT_SPARSE_FIELD,
) -> dict[str, Any]:
    """One chunk as the mapping expects it."""
    document = {
        "chunk_id": chunk["chunk_id"],
        "doc_id": chunk["doc_id"],
        "tenant_id": chunk["tenant_id"],
        "namespace": chunk["namespace"],
        "profile": profile.name,
        "fingerprint": profile.fingerprint,
        "title": chunk["title"],
        "text": chunk["text"],
    }
    if sparse_terms:
        document[sparse_field] = {feature_name(t): w for t, w in sparse_terms.items()}
    if dense is not None:
        document[DENSE_FIELD] = dense
    return document
