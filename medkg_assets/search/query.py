"""What a search query must hold before it reaches the indexes."""

from __future__ import annotations


class QueryError(ValueError):
    """A query that cannot be searched as given (bad user input, not a system failure)."""


def searchable_query(text: str) -> str:
    """The query, stripped; refused when it has no letter or digit to match on.

    An empty or punctuation-only query would still get confident-looking dense and rerank scores
    (every passage is *some* distance away), so it is refused instead of answered.
    """
    query = text.strip()
    if not any(character.isalnum() for character in query):
        raise QueryError(f"query {text!r} has no searchable words (letters or digits); ask a question")
    return query
