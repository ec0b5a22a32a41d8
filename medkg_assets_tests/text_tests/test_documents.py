"""Reading sources: every bad-input class gives an error naming file and line, and the fix."""

import json

import pytest

from medkg_assets.text.documents import BadInputError, read_documents

GOOD = {"_id": "d1", "title": "Asthma", "text": "Asthma narrows the airways."}


def write_lines(path, *lines):
    path.write_bytes(b"".join(line if isinstance(line, bytes) else line.encode() + b"\n" for line in lines))
    return path


def bad_reason(path, max_bytes=10_000):
    with pytest.raises(BadInputError) as error:
        read_documents(path, max_bytes)
    assert len(error.value.records) == 1
    record = error.value.records[0]
    assert record.file == path.name
    assert "on_bad_record: skip" in str(error.value)
    return record


def test_good_jsonl_reads_with_content_hashes(tmp_path):
    path = write_lines(tmp_path / "c.jsonl", json.dumps(GOOD))
    result = read_documents(path, 10_000)
    assert [d.doc_id for d in result.documents] == ["d1"]
    assert len(result.documents[0].content_hash) == 64


def test_malformed_json_line_names_file_and_line(tmp_path):
    path = write_lines(tmp_path / "c.jsonl", json.dumps(GOOD), '{"_id": "d2", "text": ')
    record = bad_reason(path)
    assert record.line == 2 and "malformed JSON" in record.reason


def test_missing_id_is_refused(tmp_path):
    record = bad_reason(write_lines(tmp_path / "c.jsonl", json.dumps({"text": "x"})))
    assert "_id" in record.reason


def test_missing_text_is_refused(tmp_path):
    record = bad_reason(write_lines(tmp_path / "c.jsonl", json.dumps({"_id": "a"})))
    assert "'text'" in record.reason


def test_duplicate_id_points_at_first_occurrence(tmp_path):
    path = write_lines(tmp_path / "c.jsonl", json.dumps(GOOD), json.dumps(GOOD))
    record = bad_reason(path)
    assert record.line == 2 and "c.jsonl:1" in record.reason


def test_empty_text_is_refused(tmp_path):
    record = bad_reason(write_lines(tmp_path / "c.jsonl", json.dumps({**GOOD, "text": "  "})))
    assert "empty" in record.reason


def test_binary_text_is_refused(tmp_path):
    record = bad_reason(write_lines(tmp_path / "c.jsonl", json.dumps({**GOOD, "text": "a\x00b"})))
    assert "binary" in record.reason


def test_non_utf8_line_is_refused(tmp_path):
    record = bad_reason(write_lines(tmp_path / "c.jsonl", b'{"_id": "a", "text": "\xff\xfe"}\n'))
    assert "UTF-8" in record.reason and record.line == 1


def test_non_utf8_text_file_is_refused(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(BadInputError, match="latin1.txt: not valid UTF-8"):
        read_documents(tmp_path / "docs", 10_000)


def test_oversized_document_is_refused(tmp_path):
    record = bad_reason(
        write_lines(tmp_path / "c.jsonl", json.dumps({**GOOD, "text": "x" * 50})), max_bytes=20
    )
    assert "over the 20-byte limit" in record.reason


def test_skip_policy_keeps_good_records_and_lists_bad_ones(tmp_path):
    path = write_lines(tmp_path / "c.jsonl", "not json", json.dumps(GOOD), json.dumps({"_id": "x"}))
    result = read_documents(path, 10_000, on_bad_record="skip")
    assert [d.doc_id for d in result.documents] == ["d1"]
    assert [r.line for r in result.skipped] == [1, 3]


def test_text_and_markdown_files_use_relative_paths_as_ids(tmp_path):
    (tmp_path / "docs" / "sub").mkdir(parents=True)
    (tmp_path / "docs" / "a.txt").write_text("plain text")
    (tmp_path / "docs" / "sub" / "b.md").write_text("# Diabetes\n\nHigh blood sugar.")
    (tmp_path / "docs" / "ignored.pdf").write_bytes(b"%PDF")
    result = read_documents(tmp_path / "docs", 10_000)
    assert [(d.doc_id, d.title) for d in result.documents] == [("a.txt", "a"), ("sub/b.md", "Diabetes")]
