"""Atomic writes: a failure mid-write leaves the previous artefact in place."""

import pytest

from medkg_assets.storage.atomic import VersionedDirectory, atomic_write_jsonl, read_jsonl


def test_failed_jsonl_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "chunks.jsonl"
    atomic_write_jsonl(path, [{"id": 1}])

    def records():
        yield {"id": 2}
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        atomic_write_jsonl(path, records())
    assert read_jsonl(path) == [{"id": 1}]
    assert list(tmp_path.iterdir()) == [path]


def test_versioned_directory_publishes_only_complete_builds(tmp_path):
    store = VersionedDirectory(tmp_path / "dense")
    with store.build() as scratch:
        (scratch / "v.txt").write_text("good")
    good = store.current
    with pytest.raises(RuntimeError):
        with store.build() as scratch:
            (scratch / "v.txt").write_text("half")
            raise RuntimeError("encoder crashed")
    assert store.current == good and (good / "v.txt").read_text() == "good"
    assert not [p for p in (tmp_path / "dense").iterdir() if p.name.startswith(".build-")]


def test_equal_content_gives_the_same_version(tmp_path):
    store = VersionedDirectory(tmp_path / "dense")
    for _ in range(2):
        with store.build() as scratch:
            (scratch / "v.txt").write_text("same")
    assert len(list((tmp_path / "dense" / "versions").iterdir())) == 1


def test_old_versions_are_pruned_to_keep(tmp_path):
    store = VersionedDirectory(tmp_path / "dense", keep=2)
    for text in ["a", "b", "c"]:
        with store.build() as scratch:
            (scratch / "v.txt").write_text(text)
    assert len(list((tmp_path / "dense" / "versions").iterdir())) == 2
    assert (store.current / "v.txt").read_text() == "c"
