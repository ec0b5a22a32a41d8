"""Readers open one consistent set: the chunk version that every artefact they read was built from.

Chunks are published as versions; every later artefact records the chunk version it was built
from (`chunk_version` in its `meta.json` / `info.json`). A reader that combines artefacts — the
retriever, the rerank manifest, the summary, `medkg search`, serving — pins that version and
reads its chunks, so a rebuild of the chunks (or a run killed half way through the index stages)
never pairs new chunk ids with an older index. A set whose artefacts disagree is refused with a
message naming the stages to rebuild.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from medkg_assets.storage.layout import ArtifactLayout

# stage (asset name) → (layout accessor, the file holding its recorded chunk version)
_RECORDS = {
    "dense_embeddings": ("dense", "meta.json"),
    "faiss_index": ("faiss", "info.json"),
    "sparse_vectors": ("sparse", "meta.json"),
    "sparse_index": ("lucene", "info.json"),
}
# Rebuilding an index alone would rebuild it from its own stale input: name the input too.
_REBUILD_WITH = {"faiss_index": "dense_embeddings", "sparse_index": "sparse_vectors"}
RETRIEVAL_STAGES = ("faiss_index", "sparse_vectors", "sparse_index")
ALL_STAGES = tuple(_RECORDS)


class ArtefactSetError(RuntimeError):
    """The artefacts a reader needs are missing or were built from different chunk versions."""


@dataclass(frozen=True)
class PinnedSet:
    """The published directories of some stages of one namespace × profile, all of one chunk version."""

    namespace: str
    profile: str
    chunk_version: str
    chunks_dir: Path  # the chunk version's directory (its shards)
    directories: dict[str, Path]


def rebuild_hint(namespace: str, profile: str, stages: list[str]) -> str:
    """What to run so the named stages are rebuilt from the current chunks."""
    return (
        f"rebuild {', '.join(stages)}: `medkg run --namespace {namespace} --profile {profile}` "
        f"(or materialise those assets for partition {namespace}|{profile})"
    )


def recorded_chunk_version(directory: Path, record_file: str) -> str | None:
    version: str | None = json.loads((directory / record_file).read_text()).get("chunk_version")
    return version


def _with_inputs(stages: list[str]) -> list[str]:
    named = set(stages) | {_REBUILD_WITH[s] for s in stages if s in _REBUILD_WITH}
    return [s for s in ALL_STAGES if s in named]


def pin_chunk_version(
    layout: ArtifactLayout, namespace: str, profile: str, stages: tuple[str, ...] = RETRIEVAL_STAGES
) -> PinnedSet:
    """The chunk version shared by the current artefacts of `stages`, or `ArtefactSetError`."""
    directories, versions, missing = {}, {}, []
    for stage in stages:
        accessor, record_file = _RECORDS[stage]
        current = getattr(layout, accessor)(namespace, profile).current
        if current is None:
            missing.append(stage)
            continue
        directories[stage] = current
        versions[stage] = recorded_chunk_version(current, record_file)
    if missing:
        raise ArtefactSetError(
            f"{namespace}|{profile}: {', '.join(missing)} not built yet; "
            + rebuild_hint(namespace, profile, _with_inputs(missing))
        )
    unrecorded = [stage for stage, version in versions.items() if version is None]
    if unrecorded:
        raise ArtefactSetError(
            f"{namespace}|{profile}: {', '.join(unrecorded)} predate chunk versioning (no chunk_version "
            "recorded); " + rebuild_hint(namespace, profile, _with_inputs(unrecorded))
        )
    store = layout.chunk_store(namespace).current
    current = store.name if store is not None else None
    if len(set(versions.values())) > 1:
        stale = [stage for stage, version in versions.items() if version != current] or list(versions)
        built = ", ".join(f"{stage} from chunks {version}" for stage, version in versions.items())
        raise ArtefactSetError(
            f"{namespace}|{profile}: artefacts were built from different chunk versions ({built}; "
            f"current chunks {current or 'none'}); " + rebuild_hint(namespace, profile, _with_inputs(stale))
        )
    [version] = set(versions.values())
    assert version is not None  # stages without a recorded version were refused above
    chunks_dir = layout.chunks(namespace, version)
    if not chunks_dir.is_dir():
        raise ArtefactSetError(
            f"{namespace}|{profile}: chunks version {version}, which {', '.join(stages)} were built "
            f"from, is no longer kept (current chunks {current or 'none'}); "
            + rebuild_hint(namespace, profile, _with_inputs(list(stages)))
        )
    return PinnedSet(namespace, profile, version, chunks_dir, directories)
