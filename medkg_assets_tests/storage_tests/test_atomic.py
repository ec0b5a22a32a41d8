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


@pytest.fixture(params=[0o022, 0o077, 0o002])
def umask(request):
    """Run the test under a given umask and restore the previous one afterwards."""
    import os

    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def mode(path):
    return path.stat().st_mode & 0o777


def test_atomic_files_get_the_umask_mode(tmp_path, umask):
    from medkg_assets.storage.atomic import atomic_write_json, atomic_write_text

    atomic_write_text(tmp_path / "a.txt", "new")
    atomic_write_json(tmp_path / "sub" / "b.json", {"k": 1})
    assert mode(tmp_path / "a.txt") == 0o666 & ~umask
    assert mode(tmp_path / "sub" / "b.json") == 0o666 & ~umask
    assert mode(tmp_path / "sub") == 0o777 & ~umask


def test_overwriting_gives_the_umask_mode(tmp_path, umask):
    import os

    from medkg_assets.storage.atomic import atomic_write_bytes

    path = tmp_path / "a.bin"
    path.write_bytes(b"old")
    os.chmod(path, 0o600)
    atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"new" and mode(path) == 0o666 & ~umask


def test_version_directories_get_the_umask_mode(tmp_path, umask):
    store = VersionedDirectory(tmp_path / "dense")
    with store.build() as scratch:
        assert mode(scratch) == 0o777 & ~umask
        (scratch / "v.txt").write_text("good")
    assert mode(store.current) == 0o777 & ~umask
    assert mode(store.current.parent) == 0o777 & ~umask
    assert mode(tmp_path / "dense" / "CURRENT") == 0o666 & ~umask


def test_umask_is_left_as_it_was(tmp_path, umask):
    import os

    from medkg_assets.storage.atomic import atomic_write_text

    atomic_write_text(tmp_path / "a.txt", "x")
    with VersionedDirectory(tmp_path / "d").build() as scratch:
        (scratch / "f").write_text("y")
    current = os.umask(umask)
    assert current == umask


def test_umask_is_found_without_proc_too(umask, monkeypatch):
    import os

    from medkg_assets.storage import atomic

    def no_proc(*args, **kwargs):
        raise FileNotFoundError("/proc/self/status")

    monkeypatch.setattr(atomic, "open", no_proc, raising=False)
    assert atomic.current_umask() == umask
    assert os.umask(umask) == umask
