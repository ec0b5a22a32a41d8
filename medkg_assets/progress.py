"""Progress for long loops: counts, rate and ETA to a log function, a tqdm bar on a terminal."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable


class Progress:
    """Call `advance(n)` as work completes; logs at most every `every_s` seconds and at the end."""

    def __init__(self, label: str, total: int, log: Callable[[str], None], every_s: float = 5.0):
        self.label, self.total, self.log, self.every_s = label, total, log, every_s
        self.done = 0
        self.started = time.perf_counter()
        self._last_log = self.started
        self._bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=label, unit="item", leave=False)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    def line(self) -> str:
        share = 100.0 * self.done / self.total if self.total else 100.0
        remaining = (self.total - self.done) / self.rate if self.rate > 0 else float("nan")
        eta = f"{remaining:.0f}s" if remaining == remaining else "?"
        return f"{self.label}: {self.done}/{self.total} ({share:.1f}%) {self.rate:.1f}/s ETA {eta}"

    def advance(self, count: int) -> None:
        self.done += count
        if self._bar is not None:
            self._bar.update(count)
        now = time.perf_counter()
        if now - self._last_log >= self.every_s or self.done >= self.total:
            self._last_log = now
            self.log(self.line())

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
