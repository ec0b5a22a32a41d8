"""Device choice under the GPU policy: a profile that requires a GPU never runs on the CPU."""

from __future__ import annotations

from medkg_assets.encoders.errors import GpuNotAvailableError

DEVICES = ("auto", "cuda", "cpu")


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def select_device(requested: str, require_gpu: bool, what: str) -> str:
    """`auto` → cuda when present; a GPU-requiring profile without CUDA fails fast."""
    if requested not in DEVICES:
        raise ValueError(f"device {requested!r} is not one of {', '.join(DEVICES)}")
    has_cuda = cuda_available()
    if require_gpu and (requested == "cpu" or not has_cuda):
        cause = "device=cpu was requested" if has_cuda else "no CUDA device is visible"
        raise GpuNotAvailableError(
            f"{what} requires a GPU but {cause}; "
            "GPU profiles never fall back to the CPU. Run it on a GPU node, or choose a CPU profile."
        )
    if requested == "cuda" and not has_cuda:
        raise GpuNotAvailableError(f"{what}: device=cuda was requested but no CUDA device is visible")
    return "cuda" if requested in ("auto", "cuda") and has_cuda else "cpu"


def limit_vram(device: str, budget_gb: float) -> float | None:
    """Cap this process's CUDA allocations at `budget_gb`; returns the fraction set (None on CPU)."""
    if device != "cuda":
        return None
    import torch

    total = torch.cuda.get_device_properties(0).total_memory
    fraction = min(1.0, budget_gb * (1 << 30) / total)
    torch.cuda.set_per_process_memory_fraction(fraction, 0)
    return fraction


def peak_memory_bytes(device: str) -> int | None:
    """Peak CUDA memory allocated since the last reset (None on CPU)."""
    if device != "cuda":
        return None
    import torch

    return int(torch.cuda.max_memory_allocated())
