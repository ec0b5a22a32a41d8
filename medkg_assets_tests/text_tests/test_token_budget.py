"""Token budgets: over-budget chunks are re-split into fitting pieces or rejected, and counted."""

from medkg_assets.text.chunking import WHITESPACE_TOKENIZER, Chunk, load_tokenizer
from medkg_assets.text.token_budget import apply_token_budget

TOKENS = load_tokenizer(WHITESPACE_TOKENIZER)


def chunk(chunk_id, words, start=0):
    text = " ".join(f"w{i}" for i in range(words))
    return Chunk(
        chunk_id, "doc", "ns", "t", 0, start, start + len(text), words, "Title", text, f"h-{chunk_id}"
    )


def test_chunks_within_budget_pass_untouched():
    chunks = [chunk("a", 5), chunk("b", 8)]
    result = apply_token_budget(chunks, TOKENS, 8, "resplit")
    assert result.chunks == chunks and result.over_budget == 0


def test_resplit_cuts_an_over_budget_chunk_into_pieces_that_fit_with_parent_offsets():
    result = apply_token_budget([chunk("a", 3), chunk("big", 20, start=100)], TOKENS, 8, "resplit")
    pieces = [c for c in result.chunks if c.chunk_id.startswith("big.")]
    assert [c.chunk_id for c in pieces] == ["big.0", "big.1", "big.2"]
    assert all(len(TOKENS(c.text)) <= 8 for c in pieces)
    assert " ".join(c.text for c in pieces) == chunk("big", 20).text
    assert pieces[0].start_char == 100 and pieces[-1].end_char == 100 + len(chunk("big", 20).text)
    assert result.outcome_counts == {"resplit": 1, "rejected": 0}


def test_reject_drops_over_budget_chunks_and_names_them():
    result = apply_token_budget([chunk("a", 3), chunk("big", 20)], TOKENS, 8, "reject")
    assert [c.chunk_id for c in result.chunks] == ["a"]
    assert result.rejected == ["big"] and result.outcome_counts == {"resplit": 0, "rejected": 1}
