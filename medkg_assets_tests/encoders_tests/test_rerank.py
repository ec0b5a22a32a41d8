"""The CrossEncoder reranker on the shared MedQuAD model: query-side truncation keeps a long
message from crowding the passage out of the model's input."""

import pytest

from medkg_assets.encoders.rerank import CrossEncoderReranker
from medkg_assets_tests.conftest import current_settings

pytestmark = pytest.mark.slow

LONG = "SUBJECT: gout. " + "My father has had swollen painful toes for weeks and the doctor said gout. " * 8


@pytest.fixture(scope="module")
def capped():
    return CrossEncoderReranker(
        "models:medkg-ce-minilm-medquad", "cpu", 128, current_settings().models_dir, max_query_tokens=16
    )


def test_a_long_query_is_cut_at_a_word_piece_boundary(capped):
    fitted = capped.fit_query(LONG)
    assert LONG.startswith(fitted) and len(fitted) < len(LONG)
    assert len(capped.model.tokenizer(fitted, add_special_tokens=False)["input_ids"]) == 16
    assert capped.fit_query("What is gout?") == "What is gout?"  # short queries are untouched


def test_the_capped_query_scores_as_its_own_prefix(capped):
    passage = "Gout: Gout is a form of arthritis caused by uric acid crystals in a joint."
    uncapped = CrossEncoderReranker(
        "models:medkg-ce-minilm-medquad", "cpu", 128, current_settings().models_dir
    )
    assert capped.score([(LONG, passage)]) == pytest.approx(
        uncapped.score([(capped.fit_query(LONG), passage)])
    )
