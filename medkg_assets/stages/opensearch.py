"""OpenSearch stage (per namespace × profile): the index template, published when a cluster is set."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from medkg_assets.rollout.serving import ServingState
from medkg_assets.search.opensearch_mapping import (
    DEFAULT_SPARSE_FIELD,
    PublishError,
    PublishReport,
    build_index_template,
    chunk_document,
    index_name,
    read_alias,
    template_name,
    template_problems,
)
from medkg_assets.stages.context import StageContext
from medkg_assets.stages.ingest import chunk_shards, shard_chunks
from medkg_assets.stages.reports import CheckOutcome, JsonValue, Metadata, Report, StageError, path_value
from medkg_assets.storage.atomic import atomic_write_json
from medkg_assets.storage.pinning import ArtefactSetError, pin_chunk_version
from medkg_assets.vectors.dense_artifact import DenseArtifact
from medkg_assets.vectors.sparse_artifact import SparseArtifact

PUBLISHED_STAGES = ("dense_embeddings", "sparse_vectors")


class OpenSearchPublisher(Protocol):
    """Writes a versioned index and moves its alias (OpenSearchResource in Dagster)."""

    @property
    def configured(self) -> bool: ...

    def publish(
        self,
        template_name: str,
        template: dict[str, Any],
        index: str,
        alias: str,
        documents: Iterable[dict[str, Any]],
        client: Any = None,
        move_alias: bool = True,
    ) -> PublishReport: ...


class OpenSearchReport(Report):
    index: str
    read_alias: str
    template_name: str
    dense_dims: int
    sparse_field: str
    template: dict[str, Any]
    path: str
    warnings: list[str]
    published: bool
    publish_status: str
    documents: int | None = None
    previous_indices: list[str] | None = None

    def to_metadata(self) -> Metadata:
        metadata: Metadata = {
            "index": self.index,
            "read_alias": self.read_alias,
            "template_name": self.template_name,
            "dense_dims": self.dense_dims,
            "sparse_field": self.sparse_field,
            "template": JsonValue(self.template),
            "path": path_value(self.path),
            "warnings": JsonValue(self.warnings),
            "published": self.published,
            "publish_status": self.publish_status,
        }
        if self.published:
            metadata["documents"] = self.documents
            metadata["previous_indices"] = JsonValue(self.previous_indices or [])
        return metadata


def write_opensearch_mapping(ctx: StageContext, opensearch: OpenSearchPublisher) -> OpenSearchReport:
    """Write the template; with a cluster, publish one chunk version's documents and vectors."""
    profile = ctx.require_profile()
    namespace = ctx.namespace_name
    try:  # published documents are one chunk version, with that version's vectors
        stages = PUBLISHED_STAGES if opensearch.configured else ("sparse_vectors",)
        pinned = pin_chunk_version(ctx.layout, namespace, profile.name, stages)
    except ArtefactSetError as error:
        raise StageError(f"opensearch mapping not written: {error}") from error
    template = build_index_template(namespace, profile, DEFAULT_SPARSE_FIELD)
    target = ctx.layout.opensearch_mapping(namespace, profile.name)
    atomic_write_json(target, template)
    index, alias = index_name(namespace, profile), read_alias(namespace)
    sparse = SparseArtifact.load(pinned.directories["sparse_vectors"])
    report = OpenSearchReport(
        index=index,
        read_alias=alias,
        template_name=template_name(namespace, profile),
        dense_dims=profile.dense.dims,
        sparse_field=DEFAULT_SPARSE_FIELD,
        template=template,
        path=str(target),
        warnings=[] if sparse.enabled else [f"rank_features left empty: {sparse.disabled_reason}"],
        published=False,
        publish_status="not published: OPENSEARCH_URL is not set",
    )
    if not opensearch.configured:
        ctx.log.info(f"{ctx.key}: OPENSEARCH_URL not set; template written, not published")
        return report
    dense = DenseArtifact.load(pinned.directories["dense_embeddings"])

    def documents() -> Iterator[dict[str, Any]]:
        """One shard at a time: its chunks with the dense and sparse rows of the same shard."""
        for entry in chunk_shards(ctx, pinned.chunk_version).shards:
            chunks = shard_chunks(ctx, pinned.chunk_version, entry).chunks
            dense_shard = dense.shard(entry.name)
            sparse_shard = sparse.shard(entry.name) if sparse.enabled else None
            dense_by_id = (
                dict(zip(dense_shard.chunk_ids, dense_shard.vectors, strict=True)) if dense_shard else {}
            )
            sparse_by_id = (
                dict(zip(sparse_shard.chunk_ids, sparse_shard.vectors, strict=True)) if sparse_shard else {}
            )
            for chunk in chunks:
                vector = dense_by_id.get(chunk.chunk_id)
                yield chunk_document(
                    chunk.to_record(),
                    profile,
                    sparse_by_id.get(chunk.chunk_id),
                    vector.tolist() if vector is not None else None,
                )

    try:
        live = ServingState.load(ctx.layout.serving_state(namespace), namespace).live
        published = opensearch.publish(
            template_name(namespace, profile),
            template,
            index,
            alias,
            documents(),
            move_alias=live is None or live.profile == profile.name,
        )
    except PublishError as error:
        raise StageError(f"{ctx.where}: {error}") from error
    return report.model_copy(
        update={
            "published": True,
            "publish_status": f"published {published.documents} documents",
            "documents": published.documents,
            "previous_indices": published.previous_indices,
        }
    )


def check_mapping(ctx: StageContext) -> CheckOutcome:
    """The written template: knn_vector dims = the profile's, rank_features present when sparse is
    on, valid OpenSearch index/alias/template/field names."""
    profile = ctx.require_profile()
    namespace = ctx.namespace_name
    target = ctx.layout.opensearch_mapping(namespace, profile.name)
    sparse = SparseArtifact.load(ctx.layout.sparse(namespace, profile.name).require_current("sparse_vectors"))
    try:
        template = json.loads(target.read_text())
    except (OSError, ValueError) as error:
        problems = [f"index template {target} unreadable: {type(error).__name__}: {error}"]
    else:
        problems = template_problems(template, namespace, profile, sparse.enabled, DEFAULT_SPARSE_FIELD)
    return CheckOutcome(
        passed=not problems,
        description="; ".join(problems)
        if problems
        else f"template fits {profile.name}: {profile.dense.dims}-d knn_vector, "
        + (f"rank_features '{DEFAULT_SPARSE_FIELD}'" if sparse.enabled else "sparse disabled")
        + ", valid names",
        metadata={
            "problems": len(problems),
            "expected_dims": profile.dense.dims,
            "sparse_enabled": sparse.enabled,
            "index": index_name(namespace, profile),
            "read_alias": read_alias(namespace),
            "path": path_value(target),
        },
    )
