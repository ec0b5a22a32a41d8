"""Read source documents (BEIR JSONL, .txt, .md) and refuse bad records with a usable message."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

# Matched case-insensitively: `notes.TXT` and `guide.Markdown` are read too.
SUPPORTED_SUFFIXES = (".jsonl", ".txt", ".md", ".markdown")
MARKDOWN_SUFFIXES = (".md", ".markdown")
_BOM = "\ufeff"


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
    # Files in a folder source that were not read because of their suffix (relative names).
    ignored: list[str] = field(default_factory=list)


def _json_kind(value: Any) -> str:
    """How a JSON value reads in a message: `int 42`, `bool true`, `object`, `array`, `null`."""
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return f"{type(value).__name__} {json.dumps(value)}"


def _lone_surrogate(value: Any) -> str | None:
    """The first lone surrogate (as `\\uXXXX`) in a string, or in an object's keys and values."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:
            return f"\\u{ord(value[error.start]):04x} at character {error.start}"
        return None
    if isinstance(value, dict):
        items: list[Any] = [part for pair in value.items() for part in pair]
    elif isinstance(value, list):
        items = value
    else:
        return None
    return next((found for found in map(_lone_surrogate, items) if found), None)


def _display_name(name: str) -> str:
    """A file name as it can be printed and stored: undecodable bytes become `\\xNN`."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


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


def _check_record(record: dict[str, Any], max_bytes: int) -> tuple[str, str] | None:
    """What is wrong with one parsed JSONL record, as (reason, fix), or None."""
    doc_id = record.get("_id")
    if doc_id is None:
        return "missing '_id'", "give every record a string '_id'"
    if not isinstance(doc_id, str):
        return (
            f"'_id' is {_json_kind(doc_id)}, expected a string",
            'write ids as strings (e.g. "_id": "42"), as BEIR does',
        )
    if not doc_id.strip():
        return "empty '_id'", "give every record a non-empty string '_id'"
    text, title = record.get("text"), record.get("title")
    if "text" not in record or text is None:
        return f"record {doc_id!r} has no 'text'", "add a 'text' field with the document body"
    if not isinstance(text, str):
        return (
            f"record {doc_id!r}: 'text' is {_json_kind(text)}, expected a string",
            "write the document body as one JSON string",
        )
    if title is not None and not isinstance(title, str):
        return (
            f"record {doc_id!r}: 'title' is {_json_kind(title)}, expected a string",
            "write 'title' as a JSON string, or leave it out",
        )
    for key in ("_id", "title", "text", "metadata"):
        found = _lone_surrogate(record.get(key))
        if found:
            return (
                f"record {doc_id!r}: {key!r} holds a lone surrogate ({found}) that UTF-8 cannot encode",
                "fix the \\uXXXX escape (a full surrogate pair, e.g. \\ud83d\\ude00, or the character "
                "itself in UTF-8), or remove it",
            )
    problem = _text_problem(text, max_bytes)
    return (f"record {doc_id!r}: {problem[0]}", problem[1]) if problem else None


def _read_jsonl(path: Path, name: str, max_bytes: int) -> Iterator[Document | BadRecord]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
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
            if number == 1:  # a UTF-8 byte order mark (editors on Windows write one) is no data
                line = line.removeprefix(_BOM)
            if not line.strip():
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
            problem = _check_record(record, max_bytes)
            if problem:
                yield BadRecord(name, number, *problem)
                continue
            metadata = record.get("metadata") or {}
            yield Document(
                record["_id"],
                record.get("title") or "",
                record["text"],
                name,
                number,
                metadata if isinstance(metadata, dict) else {"value": metadata},
            )


def _read_text_file(path: Path, name: str, max_bytes: int) -> Iterator[Document | BadRecord]:
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
    text = text.removeprefix(_BOM)
    problem = _text_problem(text, max_bytes)
    if problem:
        yield BadRecord(name, None, problem[0], problem[1])
        return
    title = path.stem
    if path.suffix.lower() in MARKDOWN_SUFFIXES:
        heading = next((ln.lstrip("#").strip() for ln in text.splitlines() if ln.startswith("#")), "")
        title = heading or title
    yield Document(name, title, text, name, None, {})


@dataclass
class SourceScan:
    """What a source location holds: files to read, files not read, and links refused."""

    files: list[Path]
    ignored: list[str] = field(default_factory=list)
    problems: list[BadRecord] = field(default_factory=list)


def scan_source(source: Path) -> SourceScan:
    """Sort a source's files into read / ignored / refused; sorted, so reads are deterministic.

    A folder source reads only what lies inside it: a symlink (file or directory) whose target
    leaves the folder is refused, so a link cannot pull a secrets file into the index. Links
    that stay inside are read (files) or not followed (directories: their files are read where
    they really are). Files with other suffixes are listed as ignored.
    """
    if source.is_file():
        return SourceScan([source])
    if not source.is_dir():
        raise FileNotFoundError(f"source location {source} does not exist")
    root = source.resolve()
    files: list[Path] = []
    ignored: list[Path] = []
    problems: list[tuple[Path, str, str]] = []
    outside_fix = "move or copy the file into the source folder instead of linking to it, or remove the link"
    for folder, dirnames, filenames in os.walk(source):  # does not descend into directory links
        here = Path(folder)
        for entry in dirnames:
            path = here / entry
            if path.is_symlink() and not path.resolve().is_relative_to(root):
                problems.append(
                    (
                        path,
                        f"directory symlink to {path.resolve()}, outside the source folder {root}",
                        "move or copy the files into the source folder instead of linking to them, "
                        "or remove the link",
                    )
                )
        for entry in filenames:
            path = here / entry
            if path.suffix.lower() not in SUPPORTED_SUFFIXES:
                ignored.append(path)
                continue
            target = path.resolve()
            if not target.is_relative_to(root):
                problems.append((path, f"symlink to {target}, outside the source folder {root}", outside_fix))
            elif not path.exists():
                problems.append(
                    (path, f"symlink to {target}, which does not exist", "fix or remove the link")
                )
            elif not target.is_file():
                problems.append((path, "not a regular file", "remove it or move it out of the source folder"))
            elif _display_name(name := str(path.relative_to(source))) != name:
                problems.append((path, "file name is not valid UTF-8", "rename the file to a UTF-8 name"))
            else:
                files.append(path)

    def relative(path: Path) -> str:
        return _display_name(str(path.relative_to(source)))

    return SourceScan(
        files=sorted(files),
        ignored=[relative(p) for p in sorted(ignored)],
        problems=[
            BadRecord(relative(p), None, _display_name(reason), fix) for p, reason, fix in sorted(problems)
        ],
    )


def source_files(source: Path) -> list[Path]:
    """The files a source location holds that are read, sorted so reads are deterministic."""
    return scan_source(source).files


def read_documents(
    source: Path,
    max_document_bytes: int,
    on_bad_record: Literal["fail", "skip"] = "fail",
) -> ReadResult:
    """Read every document under `source`; bad records fail the read or are listed as skipped."""
    base = source if source.is_dir() else source.parent
    documents: list[Document] = []
    scan = scan_source(source)
    bad: list[BadRecord] = list(scan.problems)
    first_seen: dict[str, str] = {}
    for path in scan.files:
        name = str(path.relative_to(base))
        reader = _read_jsonl if path.suffix.lower() == ".jsonl" else _read_text_file
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
    return ReadResult(
        documents=documents, skipped=bad, files=[str(p) for p in scan.files], ignored=scan.ignored
    )
