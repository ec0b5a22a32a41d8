"""Dense encoders: sentence-transformers in process, vLLM over HTTP, vLLM in process."""

from __future__ import annotations

import base64
import importlib.util
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import requests
import requests.adapters
from numpy.typing import NDArray
from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from medkg_assets.config.profiles import EmbeddingProfile
from medkg_assets.encoders.devices import select_device
from medkg_assets.encoders.errors import EncoderUnavailableError, ModelLoadError
from medkg_assets.model_reference import ModelNotFoundError, resolve_model

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


class DenseEncoder(Protocol):
    provider: str
    device: str

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]: ...

    def release_memory(self) -> None: ...


@lru_cache(maxsize=4)
def _load_sentence_transformer(location: str, device: str) -> SentenceTransformer:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(location, device=device)


class SentenceTransformerEncoder:
    """In-process `SentenceTransformer`; one loaded model per (location, device) per process."""

    provider = "sentence_transformers"

    def __init__(self, location: str, device: str, normalize: bool, max_tokens: int):
        try:
            self.model = _load_sentence_transformer(location, device)
        except OSError as error:
            raise ModelLoadError(f"cannot load dense model {location!r}: {error}") from error
        self.model.max_seq_length = min(max_tokens, self.model.max_seq_length or max_tokens)
        self.device, self.normalize = device, normalize

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        return self.model.encode(
            list(texts),
            batch_size=len(texts),
            normalize_embeddings=self.normalize,
            convert_to_numpy=True,
            show_progress_bar=False,
        )

    def release_memory(self) -> None:
        if self.device == "cuda":
            import torch

            torch.cuda.empty_cache()


def _normalise(vectors: NDArray[np.float32]) -> NDArray[np.float32]:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    normalised: NDArray[np.float32] = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    return normalised


class _TransientVllmError(RuntimeError):
    """A failure worth retrying: the server unreachable, overloaded (429) or erroring (5xx)."""


def _split(texts: Sequence[str], parts: int) -> list[Sequence[str]]:
    """`texts` in at most `parts` contiguous slices whose sizes differ by at most one."""
    parts = max(1, min(parts, len(texts)))
    size, extra = divmod(len(texts), parts)
    slices, start = [], 0
    for index in range(parts):
        end = start + size + (1 if index < extra else 0)
        slices.append(texts[start:end])
        start = end
    return slices


def _decode_base64(rows: list[dict[str, Any]]) -> NDArray[np.float32]:
    """`encoding_format: base64` rows: each embedding is little-endian float32 bytes."""
    return np.stack([np.frombuffer(base64.b64decode(row["embedding"]), dtype="<f4") for row in rows]).astype(
        np.float32
    )


class VllmHttpEncoder:
    """vLLM's OpenAI-compatible `/v1/embeddings`: a health probe first, then each batch split over
    `concurrency` requests in flight at once (a vLLM Deployment's replicas, or one server's
    continuous batching, see them together), vectors as base64 float32, transient failures
    (unreachable, 429, 5xx) retried with exponential back-off by tenacity; input order is kept."""

    provider = "vllm"
    device = "remote"

    def __init__(
        self,
        base_url: str,
        served_model_name: str,
        normalize: bool,
        timeout_s: float = 60.0,
        retries: int = 3,
        backoff_s: float = 1.0,
        concurrency: int = 1,
        session: requests.Session | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.model = served_model_name
        self.normalize = normalize
        self.timeout_s, self.retries, self.backoff_s = timeout_s, retries, backoff_s
        self.concurrency = max(1, concurrency)
        self.session = session or requests.Session()
        # One pooled connection per request in flight (requests' default pool keeps 10).
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=max(10, self.concurrency))
        self.session.mount(self.base_url, adapter)
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="vllm-request")

    def check_health(self) -> None:
        """`GET /health` must answer 200 before any work is sent."""
        try:
            response = self.session.get(f"{self.base_url}/health", timeout=min(self.timeout_s, 10))
        except requests.RequestException as error:
            raise EncoderUnavailableError(
                f"vLLM server at {self.base_url} is unreachable ({type(error).__name__}); "
                "check VLLM_URL and that the server is running"
            ) from error
        if response.status_code != 200:
            raise EncoderUnavailableError(
                f"vLLM server at {self.base_url} is not healthy (GET /health → {response.status_code})"
            )

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Vectors for `texts` in their order; the slices go out concurrently."""
        parts = list(self._pool.map(self._request_with_retries, _split(texts, self.concurrency)))
        vectors = np.concatenate(parts) if len(parts) > 1 else parts[0]
        return _normalise(vectors) if self.normalize else vectors

    def _request_with_retries(self, texts: Sequence[str]) -> NDArray[np.float32]:
        retrying = Retrying(
            stop=stop_after_attempt(self.retries + 1),
            wait=wait_exponential(multiplier=self.backoff_s, max=30),
            retry=retry_if_exception_type(_TransientVllmError),
            reraise=False,
        )
        try:
            return retrying(self._request, texts)
        except RetryError as error:
            raise EncoderUnavailableError(
                f"vLLM server at {self.base_url} failed {self.retries + 1} attempts: "
                f"{error.last_attempt.exception()}"
            ) from error

    def _request(self, texts: Sequence[str]) -> NDArray[np.float32]:
        payload = {"model": self.model, "input": list(texts), "encoding_format": "base64"}
        try:
            response = self.session.post(
                f"{self.base_url}/v1/embeddings", json=payload, timeout=self.timeout_s
            )
        except requests.RequestException as error:
            raise _TransientVllmError(f"{type(error).__name__}: {error}") from error
        if response.status_code >= 500 or response.status_code == 429:
            raise _TransientVllmError(f"HTTP {response.status_code}: {response.text[:200]}")
        if response.status_code != 200:
            raise EncoderUnavailableError(
                f"vLLM refused the request for model {self.model!r} "
                f"(HTTP {response.status_code}): {response.text[:300]}"
            )
        rows = sorted(response.json()["data"], key=lambda row: row["index"])
        if len(rows) != len(texts):
            raise EncoderUnavailableError(
                f"vLLM answered {len(rows)} embeddings for {len(texts)} inputs (model {self.model!r})"
            )
        return _decode_base64(rows)

    def release_memory(self) -> None:
        """Nothing to release: the server owns the GPU memory."""


class VllmInProcessEncoder:
    """`vllm.LLM` in embedding mode, on this process's GPU."""

    provider = "vllm"
    device = "cuda"

    def __init__(self, location: str, normalize: bool, max_tokens: int, gpu_memory_utilization: float):
        from vllm import LLM

        try:
            self.llm = LLM(
                model=location,
                runner="pooling",
                convert="embed",
                max_model_len=max_tokens,
                gpu_memory_utilization=gpu_memory_utilization,
            )
        except TypeError:  # older vLLM releases spell the mode as a task
            self.llm = LLM(
                model=location,
                task="embed",
                max_model_len=max_tokens,
                gpu_memory_utilization=gpu_memory_utilization,
            )
        self.normalize = normalize

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]:
        outputs = self.llm.embed(list(texts), use_tqdm=False)
        vectors = np.asarray([o.outputs.embedding for o in outputs], dtype=np.float32)
        return _normalise(vectors) if self.normalize else vectors

    def release_memory(self) -> None:
        """vLLM manages its own KV/activation memory."""


def vllm_importable() -> bool:
    return importlib.util.find_spec("vllm") is not None


def open_dense_encoder(
    profile: EmbeddingProfile,
    *,
    device: str = "auto",
    models_dir: Path | None = None,
    vllm_url: str | None = None,
    vllm_timeout_s: float = 60.0,
    vllm_retries: int = 3,
    vram_budget_gb: float = 12.0,
) -> DenseEncoder:
    """The profile's backend: sentence-transformers, a vLLM server, or in-process vLLM."""
    spec = profile.dense
    what = f"profile {profile.name}"
    if spec.backend == "vllm" and vllm_url:
        # The server owns the GPU; this process only needs to reach it.
        assert spec.served_model_name is not None  # EmbeddingProfile requires it for the vllm backend
        encoder = VllmHttpEncoder(
            vllm_url,
            spec.served_model_name,
            spec.normalize,
            timeout_s=vllm_timeout_s,
            retries=vllm_retries,
            concurrency=spec.concurrency,
        )
        encoder.check_health()
        return encoder
    resolved_device = select_device(device, profile.require_gpu, what)
    try:
        location = resolve_model(spec.model, models_dir).location
    except ModelNotFoundError as error:
        raise ModelLoadError(f"{what}: {error}") from error
    if spec.backend == "vllm":
        if resolved_device != "cuda" or not vllm_importable():
            raise EncoderUnavailableError(
                f"{what} uses the vllm backend: set VLLM_URL to an OpenAI-compatible vLLM server, "
                "or run where vllm is installed and a GPU is visible"
            )
        import torch

        total_gb = torch.cuda.get_device_properties(0).total_memory / (1 << 30)
        # vLLM pre-allocates a share of the GPU: keep it inside the VRAM budget.
        return VllmInProcessEncoder(
            location, spec.normalize, spec.max_tokens, min(0.9, vram_budget_gb / total_gb)
        )
    return SentenceTransformerEncoder(location, resolved_device, spec.normalize, spec.max_tokens)
