"""Read source documents (BEIR JSONL, .txt, .md) and refuse bad records with a usable message."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

SUPPORTED_SUFFIXES = (".jsonl", ".txt", ".md")


@dataclass(frozen=True)
class Document:
    doc_id: str
    title: str
    text: str
    source: str
    line: int | None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(f"{self.title}\n{self.text}".encode()).hexdigest()

    def to_record(self) -> dict[str, Any]:
        return {**asdict(self), "content_hash": self.content_hash}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Document:
        fields = {k: v for k, v in record.items() if k != "content_hash"}
        return cls(**fields)


@dataclass(frozen=True)
class BadRecord:
    """One record that cannot be used: where it is, what is wrong, how to fix it."""

    file: str
    line: int | None
    reason: str
    fix: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.reason} — {self.fix}"


class BadInputError(ValueError):
    """Source records that violate the input contract (policy `on_bad_record: fail`)."""

    def __init__(self, records: list[BadRecord]):
        self.records = records
        shown = "\n".join(f"  {r}" for r in records[:20])
        more = f"\n  … and {len(records) - 20} more" if len(records) > 20 else ""
        super().__init__(
            f"{len(records)} bad source record(s):\n{shown}{more}\n"
            "Fix the records, or set `on_bad_record: skip` in the namespace config to skip them."
        )


@dataclass
class ReadResult:
    documents: list[Document]
    skipped: list[BadRecord]
    files: list[str]


def _text_problem(text: str, max_bytes: int) -> tuple[str, str] | None:
    if not text.strip():
        return "empty text", "give the record some text or remove it"
    if "\x00" in text or sum(ch < " " and ch not in "\t\n\r" for ch in text) > len(text) // 100 + 1:
        return "text looks binary (NUL or control bytes)", "convert the document to plain UTF-8 text"
    size = len(text.encode("utf-8"))
    if size > max_bytes:
        return (
            f"document is {size} bytes, over the {max_bytes}-byte limit",
            "split it into several documents or raise chunking.max_document_bytes",
        )
    return None


def _read_jsonl(path: Path, name: str, max_bytes: int):
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                yield BadRecord(
                    name,
                    number,
                    f"not valid UTF-8 ({error.reason} at byte {error.start})",
                    "re-encode the file as UTF-8",
                )
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                yield BadRecord(
                    name,
                    number,
                    f"malformed JSON ({error.msg}, column {error.colno})",
                    "write one JSON object per line",
                )
                continue
            if not isinstance(record, dict):
                yield BadRecord(
                    name,
                    number,
                    f"expected a JSON object, got {type(record).__name__}",
                    "write one JSON object per line",
                )
                continue
            doc_id, text = record.get("_id"), record.get("text")
            if not isinstance(doc_id, str) or not doc_id.strip():
                yield BadRecord(name, number, "missing or empty '_id'", "give every record a string '_id'")
                continue
            if not isinstance(text, str):
                yield BadRecord(
                    name,
                    number,
                    f"record {doc_id!r} has no string 'text'",
                    "add a 'text' field with the document body",
                )
                continue
            problem = _text_problem(text, max_bytes)
            if problem:
                yield BadRecord(name, number, f"record {doc_id!r}: {problem[0]}", problem[1])
                continue
            metadata = record.get("metadata") or {}
            title = record.get("title") or ""
            yield Document(
                doc_id,
                str(title),
                text,
                name,
                number,
                metadata if isinstance(metadata, dict) else {"value": metadata},
            )


def _read_text_file(path: Path, name: str, max_bytes: int):
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        yield BadRecord(
            name,
            None,
            f"not valid UTF-8 ({error.reason} at byte {error.start})",
            "re-encode the file as UTF-8",
        )
        return
    problem = _text_problem(text, max_bytes)
    if problem:
        yield BadRecord(name, None, problem[0], problem[1])
        return
    title = path.stem
    if path.suffix == ".md":
        heading = next((ln.lstrip("#").strip() for ln in text.splitlines() if ln.startswith("#")), "")
        title = heading or title
    yield Document(name, title, text, name, None, {})


def source_files(source: Path) -> list[Path]:
    """The files a source location holds, sorted so reads are deterministic."""
    if source.is_file():
        return [source]
    if source.is_dir():
        return sorted(p for p in source.rglob("*") if p.is_file() and p.suffix in SUPPORTED_SUFFIXES)
    raise FileNotFoundError(f"source location {source} does not exist")


def read_documents(
    source: Path,
    max_document_bytes: int,
    on_bad_record: Literal["fail", "skip"] = "fail",
) -> ReadResult:
    """Read every document under `source`; bad records fail the read or are listed as skipped."""
    base = source if source.is_dir() else source.parent
    documents: list[Document] = []
    bad: list[BadRecord] = []
    first_seen: dict[str, str] = {}
    files = source_files(source)
    for path in files:
        name = str(path.relative_to(base))
        reader = _read_jsonl if path.suffix == ".jsonl" else _read_text_file
        for item in reader(path, name, max_document_bytes):
            if isinstance(item, BadRecord):
                bad.append(item)
                continue
            where = f"{item.source}:{item.line}" if item.line else item.source
            if item.doc_id in first_seen:
                bad.append(
                    BadRecord(
                        name,
                        item.line,
                        f"duplicate id {item.doc_id!r} (first seen at {first_seen[item.doc_id]})",
                        "give every document a unique id",
                    )
                )
                continue
            first_seen[item.doc_id] = where
            documents.append(item)
    if bad and on_bad_record == "fail":
        raise BadInputError(bad)
    return ReadResult(documents=documents, skipped=bad, files=[str(p) for p in files])
