"""Shared set-up for benchmark scripts: an isolated data dir and instance, and a table printer."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def isolated_data_dir(prefix: str) -> Path:
    """Point MEDKG_DATA_DIR at a fresh temp folder (before the settings are built)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ["MEDKG_DATA_DIR"] = str(path)
    return path


def print_table(title: str, headers: list[str], rows: list[list]) -> str:
    """Print (and return) a Markdown table."""
    lines = [f"### {title}", "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    return text
