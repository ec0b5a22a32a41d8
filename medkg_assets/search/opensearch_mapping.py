"""OpenSearch index template for one namespace × profile: rank_features + knn_vector + keywords."""

from __future__ import annotations

from dataclasses import dataclass
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
    chunk: dict[str, Any],
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


# OpenSearch's index naming rules (create-index API docs; aliases and templates follow them too):
# lower case, no space, comma or any of : " * + / \ | ? # > <, not "." or "..", not starting with
# _ - +, at most 255 bytes.
FORBIDDEN_NAME_CHARS = frozenset(' ,:"*+/\\|?#><')
MAX_NAME_BYTES = 255
RANK_FEATURES = "rank_features"
KNN_VECTOR = "knn_vector"


def name_problems(kind: str, name: str, *, wildcard: bool = False) -> list[str]:
    """Why `name` is not a valid OpenSearch index/alias/template name ([] when it is).

    `wildcard` allows `*` (an index pattern); field names use the same rules (the project's
    mappings are flat, lower-case snake case) and may not contain `.` (it would become an object path).
    """
    problems = []
    if not name:
        return [f"{kind} name is empty"]
    if name != name.lower():
        problems.append(f"{kind} '{name}' is not lower case")
    forbidden = FORBIDDEN_NAME_CHARS - ({"*"} if wildcard else set())
    if kind == "field":
        forbidden = forbidden | {"."}
    bad = sorted({c for c in name if c in forbidden or c.isspace()})
    if bad:
        problems.append(f"{kind} '{name}' contains forbidden characters {''.join(bad)!r}")
    if name[0] in "_-+":
        problems.append(f"{kind} '{name}' starts with '{name[0]}'")
    if name in (".", ".."):
        problems.append(f"{kind} name may not be '{name}'")
    size = len(name.encode("utf-8"))
    if size > MAX_NAME_BYTES:
        problems.append(f"{kind} '{name[:40]}…' is {size} bytes (max {MAX_NAME_BYTES})")
    return problems


def template_problems(
    template: dict[str, Any],
    namespace: str,
    profile: EmbeddingProfile,
    sparse_enabled: bool,
    sparse_field: str = DEFAULT_SPARSE_FIELD,
) -> list[str]:
    """What in a written index template does not fit the profile or OpenSearch ([] when all does).

    Checked: the knn_vector field's dimension is the profile's dense dims; the rank_features field
    is there when the sparse stage is on; the index, read alias, template name, index patterns and
    every field name are valid OpenSearch names; the versioned index matches the template's
    patterns (else the cluster would create it without this mapping).
    """
    from fnmatch import fnmatchcase

    problems: list[str] = []
    index, alias, name = (
        index_name(namespace, profile),
        read_alias(namespace),
        template_name(namespace, profile),
    )
    problems += (
        name_problems("index", index) + name_problems("alias", alias) + name_problems("template", name)
    )
    patterns = template.get("index_patterns")
    if not isinstance(patterns, list) or not patterns:
        problems.append("index_patterns missing")
        patterns = []
    for pattern in patterns:
        problems += name_problems("index pattern", str(pattern), wildcard=True)
    if patterns and not any(fnmatchcase(index, str(p)) for p in patterns):
        problems.append(f"index '{index}' matches none of the template's index_patterns {patterns}")
    mappings = (template.get("template") or {}).get("mappings") or {}
    properties = mappings.get("properties")
    if not isinstance(properties, dict):
        return [*problems, "template.mappings.properties missing"]
    for field in properties:
        problems += name_problems("field", str(field))
    knn = [
        (f, spec)
        for f, spec in properties.items()
        if isinstance(spec, dict) and spec.get("type") == KNN_VECTOR
    ]
    if not knn:
        problems.append(f"no {KNN_VECTOR} field (expected '{DENSE_FIELD}')")
    for field, spec in knn:
        if spec.get("dimension") != profile.dense.dims:
            problems.append(
                f"{KNN_VECTOR} field '{field}' has dimension {spec.get('dimension')}, "
                f"profile {profile.name} says dims={profile.dense.dims}"
            )
    if sparse_enabled:
        sparse_spec = properties.get(sparse_field)
        if not isinstance(sparse_spec, dict) or sparse_spec.get("type") != RANK_FEATURES:
            found = (
                "missing"
                if sparse_spec is None
                else f"of type {sparse_spec.get('type') if isinstance(sparse_spec, dict) else sparse_spec!r}"
            )
            problems.append(f"sparse is enabled but the {RANK_FEATURES} field '{sparse_field}' is {found}")
    return problems


class PublishError(RuntimeError):
    """The cluster did not end up holding what was written; the alias was not moved."""


@dataclass
class PublishReport:
    """What a publish left in the cluster: the index, its document count, the alias's old indices."""

    index: str
    alias: str
    documents: int
    previous_indices: list[str]
