"""Helpers for tests that need a service: free ports, starting a server until it is ready, clean
shutdown of a process group, and the rule for a missing service (skip here, fail in CI)."""

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import pytest
import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def service_missing(message: str) -> NoReturn:
    """A service the test needs is absent: skip on a developer machine, fail in CI (`make test` has it)."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def require_binary(name: str, hint: str) -> str:
    """The path of executable `name`, or `service_missing` with `hint` on how to get it."""
    path = shutil.which(name)
    if path is None:
        service_missing(f"{name} is not installed; {hint}")
    return path


def http_ok(url: str) -> Callable[[], bool]:
    """A readiness probe: `url` answers 200."""

    def probe() -> bool:
        try:
            return requests.get(url, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    return probe


def start_until_ready(
    command: list[str],
    log_path: Path,
    ready: Callable[[], bool],
    timeout_s: float,
    poll_s: float = 1.0,
    **popen,
) -> subprocess.Popen:
    """Start `command` in its own process group (output to `log_path`) and wait, bounded, for `ready`.

    Fails the test with the log's tail when the process exits or `timeout_s` passes; the caller
    stops the returned process with `stop_process_group`.
    """
    log = log_path.open("w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **popen)
    log.close()  # the child keeps its own handle
    deadline = time.monotonic() + timeout_s
    while not ready():
        if process.poll() is not None:
            pytest.fail(f"{command[0]} exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            stop_process_group(process)
            pytest.fail(f"{command[0]} not ready after {timeout_s}s:\n{log_path.read_text()[-3000:]}")
        time.sleep(poll_s)
    return process


def stop_process_group(process: subprocess.Popen, timeout_s: int = 30) -> None:
    """SIGTERM the whole group (servers fork workers), SIGKILL what is left after `timeout_s`."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=timeout_s)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
