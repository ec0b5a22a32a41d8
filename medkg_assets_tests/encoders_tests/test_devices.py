"""GPU policy: a GPU profile never falls back to the CPU (this machine has no GPU)."""

import pytest

from medkg_assets.encoders.devices import cuda_available, peak_memory_bytes, select_device
from medkg_assets.encoders.errors import GpuNotAvailableError

pytestmark = pytest.mark.skipif(cuda_available(), reason="asserts the CPU-only behaviour")


def test_auto_without_gpu_is_cpu_for_a_cpu_profile():
    assert select_device("auto", require_gpu=False, what="p") == "cpu"


@pytest.mark.parametrize("requested", ["auto", "cuda", "cpu"])
def test_gpu_profile_without_gpu_fails_fast(requested):
    with pytest.raises(GpuNotAvailableError, match="never fall back to the CPU"):
        select_device(requested, require_gpu=True, what="profile qwen3_vllm")


def test_explicit_cuda_without_gpu_is_an_error():
    with pytest.raises(GpuNotAvailableError):
        select_device("cuda", require_gpu=False, what="p")


def test_unknown_device_is_refused():
    with pytest.raises(ValueError):
        select_device("tpu", require_gpu=False, what="p")


def test_peak_memory_is_none_on_cpu():
    assert peak_memory_bytes("cpu") is None
