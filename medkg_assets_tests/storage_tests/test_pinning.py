"""Readers pin one chunk version; a set built from different versions is refused by name."""

import json

import pytest

from medkg_assets.storage.atomic import canonical_json
from medkg_assets.storage.layout import ArtifactLayout
from medkg_assets.storage.pinning import ALL_STAGES, ArtefactSetError, pin_chunk_version

STORES = {
    "dense_embeddings": ("dense", "meta.json"),
    "faiss_index": ("faiss", "info.json"),
    "sparse_vectors": ("sparse", "meta.json"),
    "sparse_index": ("lucene", "info.json"),
}


def publish_chunks(layout, text):
    with layout.chunk_store("ns").build() as scratch:
        (scratch / "marker.txt").write_text(text)
    return layout.chunk_store("ns").current.name


def publish(layout, stage, chunk_version, extra="x"):
    accessor, record = STORES[stage]
    with getattr(layout, accessor)("ns", "p").build() as scratch:
        record_data = {"extra": extra} if chunk_version is None else {"chunk_version": chunk_version}
        (scratch / record).write_text(canonical_json(record_data))


@pytest.fixture
def layout(tmp_path):
    return ArtifactLayout(tmp_path)


def test_a_consistent_set_reads_the_chunks_it_was_built_from(layout):
    old = publish_chunks(layout, '{"chunk_id": "a"}\n')
    for stage in ALL_STAGES:
        publish(layout, stage, old)
    new = publish_chunks(layout, '{"chunk_id": "b"}\n')
    pinned = pin_chunk_version(layout, "ns", "p", ALL_STAGES)
    assert new != old and pinned.chunk_version == old
    assert json.loads((pinned.chunks_dir / "marker.txt").read_text()) == {"chunk_id": "a"}
    assert layout.chunks("ns").name == new


def test_indexes_of_different_chunk_versions_are_refused_naming_the_stale_stages(layout):
    old = publish_chunks(layout, "old\n")
    for stage in ALL_STAGES:
        publish(layout, stage, old)
    new = publish_chunks(layout, "new\n")
    publish(layout, "dense_embeddings", new)
    publish(layout, "faiss_index", new)
    with pytest.raises(ArtefactSetError) as error:
        pin_chunk_version(layout, "ns", "p")
    message = str(error.value)
    assert "rebuild sparse_vectors, sparse_index" in message
    assert "medkg run --namespace ns --profile p" in message and f"current chunks {new}" in message


def test_a_missing_stage_names_itself_and_its_input(layout):
    version = publish_chunks(layout, "c\n")
    publish(layout, "faiss_index", version)
    with pytest.raises(
        ArtefactSetError, match="sparse_vectors, sparse_index not built yet; rebuild sparse_vectors"
    ):
        pin_chunk_version(layout, "ns", "p")


def test_artefacts_without_a_recorded_chunk_version_ask_for_a_rebuild(layout):
    publish_chunks(layout, "c\n")
    for stage in ALL_STAGES:
        publish(layout, stage, None)
    with pytest.raises(ArtefactSetError, match="predate chunk versioning"):
        pin_chunk_version(layout, "ns", "p", ("faiss_index",))


def test_a_chunk_version_no_longer_kept_is_refused(layout):
    first = publish_chunks(layout, "v0\n")
    publish(layout, "faiss_index", first)
    for n in range(1, 6):  # more rebuilds than the store keeps
        publish_chunks(layout, f"v{n}\n")
    with pytest.raises(
        ArtefactSetError,
        match=f"chunks version {first}, which faiss_index were built from, is no longer kept",
    ):
        pin_chunk_version(layout, "ns", "p", ("faiss_index",))
