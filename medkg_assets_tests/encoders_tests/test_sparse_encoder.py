"""SPLADE pruning rules, and real encoding with the packaged SPLADE model."""

import pytest

from medkg_assets.encoders.sparse import SpladeEncoder, prune_terms
from medkg_assets_tests.conftest import current_settings


def test_prune_keeps_top_k_positive_terms_clipped_and_sorted():
    pairs = [("b", 12.0), ("a", 3.0), ("c", 0.5), ("d", 0.0), ("e", -1.0)]
    assert prune_terms(pairs, top_k=2, max_weight=10.0) == {"a": 3.0, "b": 10.0}


def test_weights_that_round_to_zero_are_dropped():
    assert prune_terms([("a", 4e-7), ("b", 0.2)], top_k=5, max_weight=10.0) == {"b": 0.2}


@pytest.mark.slow
def test_packaged_splade_expands_documents_and_queries():
    encoder = SpladeEncoder(current_settings().profiles.get("minilm_cpu").sparse, "cpu")
    [doc] = encoder.encode_documents(["Asthma narrows the airways and causes wheezing."])
    [query] = encoder.encode_queries(["what causes wheezing"])
    assert "asthma" in doc and len(doc) <= 400 and max(doc.values()) <= 10.0
    assert set(query) & set(doc)


@pytest.mark.slow
def test_a_token_budget_splits_forward_passes_without_changing_the_weights():
    spec = current_settings().profiles.get("minilm_cpu").sparse
    texts = [
        "Glaucoma is a group of eye diseases that damage the optic nerve. " * 6,
        "Asthma narrows the airways and causes wheezing, chest tightness and coughing.",
        "Anemia means too few red blood cells.",
        "Gout is arthritis.",
    ]
    whole = SpladeEncoder(spec, "cpu").encode_documents(texts)
    bounded = SpladeEncoder(spec.model_copy(update={"max_batch_tokens": 40}), "cpu")
    lengths = bounded.token_lengths(texts)
    assert lengths[0] > 40 and len(lengths) == 4  # the long text goes alone, the others in small passes
    split = bounded.encode_documents(texts)
    assert [set(weights) for weights in split] == [set(weights) for weights in whole]
    for mine, theirs in zip(split, whole, strict=True):
        assert all(abs(mine[term] - theirs[term]) < 1e-3 for term in theirs)
