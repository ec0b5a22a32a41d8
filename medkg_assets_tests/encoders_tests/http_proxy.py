"""A small HTTP proxy in front of the real vLLM server: it counts requests in flight, records what
the client sent, and can answer the first requests with an error status (fault injection)."""

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests


class ProxyState:
    def __init__(self, upstream: str, delay_s: float, fail_with: list[int]):
        self.upstream, self.delay_s, self.fail_with = upstream, delay_s, list(fail_with)
        self.lock = threading.Lock()
        self.in_flight = self.max_in_flight = 0
        self.posts: list[dict] = []


def _handler(state: ProxyState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            upstream = requests.get(state.upstream + self.path, timeout=30)
            self._answer(upstream.status_code, upstream.content)

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with state.lock:
                state.posts.append(json.loads(body))
                injected = state.fail_with.pop(0) if state.fail_with else None
                state.in_flight += 1
                state.max_in_flight = max(state.max_in_flight, state.in_flight)
            try:
                time.sleep(state.delay_s)  # long enough that concurrent requests overlap here
                if injected is not None:
                    self._answer(injected, json.dumps({"error": f"injected {injected}"}).encode())
                    return
                upstream = requests.post(
                    state.upstream + self.path,
                    data=body,
                    headers={"Content-Type": "application/json"},
                    timeout=60,
                )
                self._answer(upstream.status_code, upstream.content)
            finally:
                with state.lock:
                    state.in_flight -= 1

    return Handler


@contextmanager
def vllm_proxy(
    upstream: str, delay_s: float = 0.0, fail_with: list[int] | None = None
) -> Iterator[tuple[str, ProxyState]]:
    """(proxy URL, its state) for the duration of the block."""
    state = ProxyState(upstream, delay_s, fail_with or [])
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
