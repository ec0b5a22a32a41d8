"""Namespace registry: safe names, budgets, variable expansion."""

import pytest

from medkg_assets.config import ConfigError, load_namespaces, validate_namespace_name
from medkg_assets.config.loading import expand_variables
from medkg_assets.config.namespaces import load_namespace
from medkg_assets.settings import PROJECT_ROOT


@pytest.mark.parametrize("name", ["medquad_sample", "single_vector.qwen3.4096.v1", "pubmed-2024"])
def test_plain_and_dotted_names_are_accepted(name):
    assert validate_namespace_name(name) == name


@pytest.mark.parametrize("name", ["../etc", "a/b", "a\\b", "a..b", ".hidden", "", "a|b", "x" * 129])
def test_path_like_or_unsafe_names_are_refused(name):
    with pytest.raises(ConfigError, match="invalid namespace name"):
        validate_namespace_name(name)


def test_shipped_namespaces_load_with_eval_sets():
    namespaces = load_namespaces(PROJECT_ROOT / "config" / "namespaces", PROJECT_ROOT)
    sample = namespaces["medquad_sample"]
    assert sample.source_path.is_file()
    [dev] = sample.eval  # one mapping: a list of one set named dev
    assert dev.name == "dev" and sample.resolve(dev.qrels).is_file() and dev.train_qrels is None
    assert "medquad_full" in namespaces


def test_eval_sets_are_a_named_list_with_unique_names(tmp_path):
    base = "source: {path: x}\ntenant_id: t\ntokenizer: whitespace\nmax_tokens: 256\n"
    (tmp_path / "two.yaml").write_text(
        base
        + "eval:\n  - {name: a, queries: q, qrels: d, train_qrels: t}\n  - {name: b, queries: q, qrels: d}\n"
    )
    [a, b] = load_namespace(tmp_path / "two.yaml", tmp_path).eval
    assert (a.name, a.train_qrels, b.name, b.train_qrels) == ("a", "t", "b", None)
    (tmp_path / "same.yaml").write_text(
        base + "eval:\n  - {name: a, queries: q, qrels: d}\n  - {name: a, queries: q, qrels: d2}\n"
    )
    with pytest.raises(ConfigError, match="eval set names must be unique; repeated: a"):
        load_namespace(tmp_path / "same.yaml", tmp_path)


def test_window_larger_than_budget_names_file_and_key(tmp_path):
    (tmp_path / "bad.yaml").write_text(
        "source: {path: x}\ntenant_id: t\ntokenizer: whitespace\nmax_tokens: 10\n"
        "chunking: {window_tokens: 20, overlap_tokens: 2}\n"
    )
    with pytest.raises(ConfigError) as error:
        load_namespaces(tmp_path, tmp_path)
    assert "bad.yaml" in str(error.value) and "window_tokens" in str(error.value)


def test_unknown_key_is_refused(tmp_path):
    (tmp_path / "ns.yaml").write_text(
        "source: {path: x}\ntenant_id: t\ntokenizer: whitespace\nmax_tokens: 10\ntennant: typo\n"
    )
    with pytest.raises(ConfigError, match="ns.yaml: tennant"):
        load_namespaces(tmp_path, tmp_path)


def test_variables_expand_with_defaults():
    assert expand_variables("${NOPE_X:-a}/b", {}) == "a/b"
    assert expand_variables("${DIR:-a}/b", {"DIR": "/data"}) == "/data/b"
    with pytest.raises(ConfigError, match="NOPE_Y"):
        expand_variables("${NOPE_Y}/b", {})


GOOD_SPEC = "source: {path: x}\ntenant_id: t\ntokenizer: whitespace\nmax_tokens: 256\n"


def test_badly_named_file_is_skipped_and_named_with_the_fix(tmp_path):
    from medkg_assets.config.namespaces import scan_namespaces

    (tmp_path / "good.yaml").write_text(GOOD_SPEC)
    (tmp_path / "bad name.yaml").write_text(GOOD_SPEC)
    registry = scan_namespaces(tmp_path, tmp_path)
    assert list(registry.namespaces) == ["good"]
    [(path, message)] = registry.invalid_files.items()
    assert path == tmp_path / "bad name.yaml"
    assert str(tmp_path / "bad name.yaml") in message and "invalid namespace name" in message
    assert "rename" in message and "bad_name.yaml" in message
    assert list(load_namespaces(tmp_path, tmp_path)) == ["good"]


@pytest.mark.parametrize("file_name", ["sample.yml", "sample.YAML"])
def test_yaml_file_with_another_suffix_is_reported_not_ignored(tmp_path, file_name):
    from medkg_assets.config.namespaces import scan_namespaces

    (tmp_path / file_name).write_text(GOOD_SPEC)
    registry = scan_namespaces(tmp_path, tmp_path)
    assert registry.namespaces == {}
    assert "rename it to sample.yaml" in registry.invalid_files[tmp_path / file_name]


def test_badly_named_file_loaded_directly_names_the_file(tmp_path):
    from medkg_assets.config.namespaces import load_namespace

    path = tmp_path / "a..b.yaml"
    path.write_text(GOOD_SPEC)
    with pytest.raises(ConfigError) as error:
        load_namespace(path, tmp_path)
    assert str(path) in str(error.value) and "rename" in str(error.value)


def test_invalid_content_still_fails_beside_a_badly_named_file(tmp_path):
    (tmp_path / "bad name.yaml").write_text(GOOD_SPEC)
    (tmp_path / "ns.yaml").write_text(GOOD_SPEC + "tennant: typo\n")
    with pytest.raises(ConfigError, match="ns.yaml: tennant"):
        load_namespaces(tmp_path, tmp_path)


def test_unreadable_namespace_file_names_the_file(tmp_path):
    (tmp_path / "latin.yaml").write_bytes("tenant_id: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin.yaml: not valid UTF-8 .* re-encode"):
        load_namespaces(tmp_path, tmp_path)


def test_directory_where_a_yaml_file_is_expected_names_the_path(tmp_path):
    from medkg_assets.config.loading import read_yaml

    (tmp_path / "dir.yaml").mkdir()
    with pytest.raises(ConfigError, match="dir.yaml: cannot be read"):
        read_yaml(tmp_path / "dir.yaml")
