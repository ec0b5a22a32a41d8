"""Lucene indexes built by Anserini in a subprocess; exact impact scores; corrupt index errors."""

import pytest

from medkg_assets.search.lucene import (
    LuceneIndexError,
    LuceneSearch,
    StoredChunk,
    build_index,
    write_impact_collection,
    write_text_collection,
)

pytestmark = pytest.mark.slow
VECTORS = [
    ("c1", {"asthma": 2.5, "air": 1.0, "##way": 0.5}),
    ("c2", {"diabetes": 3.0, "sugar": 1.2, "air": 0.3}),
    ("c3", {"asthma": 0.7, "sugar": 0.9}),
]

TEXTS = [
    ("c1", "Asthma", "Asthma narrows the airways"),
    ("c2", "", "Diabetes means high blood sugar"),
    ("c3", "Both", "asthma and sugar"),
]


@pytest.fixture(scope="module")
def indexes(tmp_path_factory):
    root = tmp_path_factory.mktemp("lucene")
    write_impact_collection(root / "impact_docs" / "docs.jsonl", VECTORS, 100)
    write_text_collection(
        root / "bm25_docs" / "docs.jsonl",
        [StoredChunk(cid, f"doc-{cid}", "nih", title, text) for cid, title, text in TEXTS],
    )
    build_index("impact", root / "impact_docs", root / "impact")
    build_index("bm25", root / "bm25_docs", root / "bm25")
    return root


def test_impact_score_is_the_integer_dot_product(indexes):
    hits = LuceneSearch(indexes / "impact", None).impact({"asthma": 100, "sugar": 50}, k=10)
    assert hits == [("c1", 25000.0), ("c3", 11500.0), ("c2", 6000.0)]


def test_bm25_ranks_by_text(indexes):
    hits = LuceneSearch(None, indexes / "bm25").bm25("blood sugar", k=10)
    assert hits[0][0] == "c2" and {h[0] for h in hits} == {"c2", "c3"}


def test_corrupt_index_directory_is_a_clear_error(indexes, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "segments_1").write_bytes(b"not a lucene segment file")
    with pytest.raises(LuceneIndexError, match="missing or corrupt — rematerialise sparse_index"):
        LuceneSearch(broken, None)


def test_build_failure_reports_the_indexer_output(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "docs.jsonl").write_text("{not json}\n")
    with pytest.raises(LuceneIndexError, match="building the bm25 index"):
        build_index("bm25", tmp_path / "missing_dir", tmp_path / "index")


def _distinct_words(count):
    """`count` distinct words that survive the English analyser as distinct terms."""
    return " ".join(f"w{n}x" for n in range(count))


def test_bm25_query_over_the_clause_limit_is_cut_with_a_warning(indexes, caplog):
    search = LuceneSearch(None, indexes / "bm25")
    hits = search.bm25("blood sugar " + _distinct_words(1700), k=10)
    assert hits[0][0] == "c2"
    assert "BM25 query cut to its first 1024 of 1702 words" in caplog.text


def test_impact_query_over_the_clause_limit_keeps_the_heaviest_terms(indexes, caplog):
    weights = {f"w{n}x": 1 for n in range(1700)} | {"asthma": 100, "sugar": 50}
    hits = LuceneSearch(indexes / "impact", None).impact(weights, k=10)
    assert hits[:2] == [("c1", 25000.0), ("c3", 11500.0)]
    assert "impact query has 1702 terms; kept the 1024 heaviest" in caplog.text


def test_bm25_documents_keep_what_a_hit_needs(indexes):
    """The retriever reads a hit's document, tenant, title and text from the BM25 index's stored
    fields instead of holding the namespace's chunks; the stored fields change no score."""
    search = LuceneSearch(None, indexes / "bm25")
    assert search.stored("c3") == StoredChunk("c3", "doc-c3", "nih", "Both", "asthma and sugar")
    assert sorted(cid for cid, _ in search.bm25("asthma", k=10)) == ["c1", "c3"]
    with pytest.raises(LuceneIndexError, match="c9 is not in the BM25 index"):
        search.stored("c9")
