"""Queries without anything to match on are refused before they reach an index."""

import pytest

from medkg_assets.search.query import QueryError, searchable_query


@pytest.mark.parametrize("text", ["", "   ", "?!", "... --- ...", "\t¿?\n"])
def test_query_without_letters_or_digits_is_refused(text):
    with pytest.raises(QueryError, match="no searchable words"):
        searchable_query(text)


def test_query_is_stripped_and_otherwise_kept():
    assert searchable_query("  What is gout ?  ") == "What is gout ?"
    assert searchable_query("B12") == "B12"
