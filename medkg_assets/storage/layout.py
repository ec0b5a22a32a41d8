"""Where every artefact lives under MEDKG_DATA_DIR, so no module invents its own paths."""

from __future__ import annotations

from pathlib import Path

from medkg_assets.storage.atomic import VersionedDirectory

# Enough for an index built two or three ingests ago to keep serving until it is rebuilt.
CHUNK_VERSIONS_KEPT = 4


class ArtifactLayout:
    """`<data>/namespaces/<ns>/…` for per-namespace artefacts, `…/profiles/<p>/…` per profile."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir

    def namespace_dir(self, namespace: str) -> Path:
        return self.data_dir / "namespaces" / namespace

    def serving_state(self, namespace: str) -> Path:
        """Which profile the namespace serves, and the ones it served before (rollback targets)."""
        return self.namespace_dir(namespace) / "serving.json"

    def ab_report(self, namespace: str) -> Path:
        """The live profile against the candidate (`profile_ab_report`)."""
        return self.namespace_dir(namespace) / "ab_report.json"

    def documents(self, namespace: str) -> Path:
        return self.namespace_dir(namespace) / "documents.jsonl"

    def chunk_store(self, namespace: str) -> VersionedDirectory:
        """Chunk versions stay on disk a while: indexes built from an older version still read it."""
        return VersionedDirectory(self.namespace_dir(namespace) / "chunks", keep=CHUNK_VERSIONS_KEPT)

    def chunks(self, namespace: str, version: str | None = None) -> Path:
        """The directory of one chunk version (default: the current one): `shards.json` and
        `shards/shard-NNNNN.parquet` (text/chunk_shards.py)."""
        store = self.chunk_store(namespace)
        if version is None:
            return store.require_current(f"chunks of namespace {namespace}")
        return store.root / "versions" / version

    def profile_dir(self, namespace: str, profile: str) -> Path:
        return self.namespace_dir(namespace) / "profiles" / profile

    def dense(self, namespace: str, profile: str) -> VersionedDirectory:
        return VersionedDirectory(self.profile_dir(namespace, profile) / "dense")

    def faiss(self, namespace: str, profile: str) -> VersionedDirectory:
        return VersionedDirectory(self.profile_dir(namespace, profile) / "faiss")

    def sparse(self, namespace: str, profile: str) -> VersionedDirectory:
        return VersionedDirectory(self.profile_dir(namespace, profile) / "sparse")

    def lucene(self, namespace: str, profile: str) -> VersionedDirectory:
        return VersionedDirectory(self.profile_dir(namespace, profile) / "lucene")

    def opensearch_mapping(self, namespace: str, profile: str) -> Path:
        return self.profile_dir(namespace, profile) / "opensearch" / "index_template.json"

    def rerank_manifest(self, namespace: str, profile: str) -> Path:
        return self.profile_dir(namespace, profile) / "rerank" / "rerank_manifest.json"

    def fusion_config(self, namespace: str, profile: str) -> Path:
        """The fusion and rerank settings tuned for the partition (`fusion_config` asset)."""
        return self.profile_dir(namespace, profile) / "rerank" / "fusion.json"

    def adapted_rerankers(
        self, namespace: str, profile: str, adopted: str | None = None
    ) -> VersionedDirectory:
        """CrossEncoders fine-tuned for the partition (`adapted_reranker`); the adopted is never pruned."""
        root = self.profile_dir(namespace, profile) / "rerank" / "adapted"
        return VersionedDirectory(root, pinned=frozenset({adopted} if adopted else ()))

    def adaptation_record(self, namespace: str, profile: str) -> Path:
        """The last adaptation: its candidate, the comparison with the base, and which model is used."""
        return self.profile_dir(namespace, profile) / "rerank" / "adaptation.json"

    def recall_history(self, namespace: str, profile: str) -> Path:
        return self.profile_dir(namespace, profile) / "checks" / "recall_history.json"

    def processing_summary(self, namespace: str, profile: str) -> Path:
        return self.profile_dir(namespace, profile) / "processing_summary.json"

    def stage_report(self, namespace: str, profile: str, stage: str) -> Path:
        """The last report of a per-profile stage (timings, cache figures) beside its artefact:
        kept out of the versioned directory, whose name is a digest of content alone."""
        return self.profile_dir(namespace, profile) / "reports" / f"{stage}.json"

    def dense_parity_baseline(self, namespace: str, profile: str) -> Path:
        return self.profile_dir(namespace, profile) / "checks" / "dense_parity_baseline.json"
