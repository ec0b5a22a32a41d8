"""Which namespaces take the candidate profile: an explicit canary list plus a stable hash share.

A namespace's bucket (0–99) comes from a hash of its name, so raising PROFILE_ROLLOUT_PERCENTAGE
from 10 to 50 to 100 only ever adds namespaces: none flips back to the baseline on the way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

from medkg_assets.config.env_names import PROFILE_ROLLOUT_PERCENTAGE
from medkg_assets.config.loading import ConfigError


def rollout_bucket(namespace: str) -> int:
    """A namespace's fixed place in 0–99."""
    return int(hashlib.sha256(namespace.encode("utf-8")).hexdigest()[:8], 16) % 100


def in_percentage(namespace: str, percentage: int) -> bool:
    return rollout_bucket(namespace) < percentage


def parse_percentage(environ: Mapping[str, str]) -> int:
    """PROFILE_ROLLOUT_PERCENTAGE as an integer 0–100 (unset: 0, only the canary list)."""
    raw = environ.get(PROFILE_ROLLOUT_PERCENTAGE, "").strip()
    if not raw:
        return 0
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= 100:
        raise ConfigError(
            f"{PROFILE_ROLLOUT_PERCENTAGE}={raw!r} is not a percentage; use an integer 0–100 (0, 10, 50, 100)"
        )
    return value


def rollout_set(namespaces: Iterable[str], canary: Iterable[str], percentage: int) -> list[str]:
    """Namespaces that take the candidate: the canary list, plus every namespace under the percentage."""
    canary = set(canary)
    return sorted(n for n in namespaces if n in canary or in_percentage(n, percentage))
