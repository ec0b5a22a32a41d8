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
    assert record.reason == "record 'd1': empty text"


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


# --- files outside the source folder (symlinks) ---------------------------------------------


def folder_with_outside_link(tmp_path, kind="file"):
    """`docs/` holding one good file and a symlink to something outside `docs/`."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.txt").write_text("inside the source folder")
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "token.txt").write_text("API_TOKEN=hunter2")
    if kind == "file":
        (docs / "notes.txt").symlink_to(secrets / "token.txt")
    else:
        (docs / "linked").symlink_to(secrets, target_is_directory=True)
    return docs


@pytest.mark.parametrize("kind, name", [("file", "notes.txt"), ("dir", "linked")])
def test_symlink_leaving_the_source_folder_fails_the_read(tmp_path, kind, name):
    docs = folder_with_outside_link(tmp_path, kind)
    with pytest.raises(BadInputError) as error:
        read_documents(docs, 10_000)
    [record] = error.value.records
    assert record.file == name and record.line is None
    assert "outside the source folder" in record.reason and "move" in record.fix
    assert "hunter2" not in str(error.value)


@pytest.mark.parametrize("kind, name", [("file", "notes.txt"), ("dir", "linked")])
def test_symlink_leaving_the_source_folder_is_skipped_not_read(tmp_path, kind, name):
    docs = folder_with_outside_link(tmp_path, kind)
    result = read_documents(docs, 10_000, on_bad_record="skip")
    assert [d.doc_id for d in result.documents] == ["good.txt"]
    assert [r.file for r in result.skipped] == [name]
    assert all("hunter2" not in d.text for d in result.documents)


def test_symlink_inside_the_source_folder_is_read(tmp_path):
    docs = tmp_path / "docs"
    (docs / "real").mkdir(parents=True)
    (docs / "real" / "a.txt").write_text("shared text")
    (docs / "alias.txt").symlink_to(docs / "real" / "a.txt")
    result = read_documents(docs, 10_000)
    assert [d.doc_id for d in result.documents] == ["alias.txt", "real/a.txt"]
    assert result.skipped == []


# --- strings JSON can carry but UTF-8 cannot --------------------------------------------------


@pytest.mark.parametrize("field", ["text", "title", "_id"])
def test_lone_surrogate_is_a_bad_record_with_file_and_line(tmp_path, field):
    bad = json.dumps({**GOOD, "_id": "d2", field: "bad \ud800 here"})
    assert "\\ud800" in bad
    record = bad_reason(write_lines(tmp_path / "c.jsonl", json.dumps(GOOD), bad))
    assert record.line == 2
    assert f"'{field}'" in record.reason and "surrogate" in record.reason
    assert "UTF-8" in record.fix


def test_lone_surrogate_in_metadata_is_a_bad_record(tmp_path):
    bad = json.dumps({**GOOD, "metadata": {"source": {"\ud83d": "x"}}})
    record = bad_reason(write_lines(tmp_path / "c.jsonl", bad))
    assert record.line == 1 and "'metadata'" in record.reason and "surrogate" in record.reason


def test_lone_surrogate_is_skipped_under_skip_policy(tmp_path):
    path = write_lines(
        tmp_path / "c.jsonl", json.dumps({**GOOD, "_id": "d0", "text": "\udfff"}), json.dumps(GOOD)
    )
    result = read_documents(path, 10_000, on_bad_record="skip")
    assert [d.doc_id for d in result.documents] == ["d1"]
    assert [r.line for r in result.skipped] == [1]
    [d.to_record() for d in result.documents]  # hashes without UnicodeEncodeError


# --- field types -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, said", [(42, "int 42"), (4.5, "float 4.5"), (True, "bool true"), (["a"], "array")]
)
def test_non_string_id_says_what_it_got(tmp_path, value, said):
    record = bad_reason(write_lines(tmp_path / "c.jsonl", json.dumps({**GOOD, "_id": value})))
    assert "missing" not in record.reason
    assert f"'_id' is {said}" in record.reason and "expected a string" in record.reason
    assert "string" in record.fix


def test_missing_and_empty_id_are_told_apart(tmp_path):
    missing = bad_reason(write_lines(tmp_path / "a.jsonl", json.dumps({"text": "x"})))
    empty = bad_reason(write_lines(tmp_path / "b.jsonl", json.dumps({"_id": " ", "text": "x"})))
    assert "missing '_id'" in missing.reason and "empty '_id'" in empty.reason


@pytest.mark.parametrize("title, said", [({"en": "Asthma"}, "object"), (["Asthma"], "array"), (7, "int 7")])
def test_non_string_title_is_refused(tmp_path, title, said):
    record = bad_reason(write_lines(tmp_path / "c.jsonl", json.dumps({**GOOD, "title": title})))
    assert f"'title' is {said}, expected a string" in record.reason
    assert "{" not in record.reason and "[" not in record.reason


@pytest.mark.parametrize("extra", [{}, {"title": None}, {"title": ""}])
def test_absent_or_null_title_is_empty(tmp_path, extra):
    record = {"_id": "d1", "text": "t", **extra}
    result = read_documents(write_lines(tmp_path / "c.jsonl", json.dumps(record)), 10_000)
    assert result.documents[0].title == ""


def test_non_string_text_says_what_it_got(tmp_path):
    record = bad_reason(write_lines(tmp_path / "c.jsonl", json.dumps({"_id": "a", "text": 3})))
    assert "'text' is int" in record.reason


# --- byte order marks --------------------------------------------------------------------------


def test_utf8_bom_before_the_first_jsonl_record_is_accepted(tmp_path):
    path = write_lines(tmp_path / "c.jsonl", b"\xef\xbb\xbf" + json.dumps(GOOD).encode() + b"\n")
    for policy in ("fail", "skip"):
        result = read_documents(path, 10_000, on_bad_record=policy)
        assert [d.doc_id for d in result.documents] == ["d1"] and result.skipped == []


def test_bom_later_in_a_jsonl_file_is_still_malformed(tmp_path):
    path = write_lines(tmp_path / "c.jsonl", json.dumps(GOOD), b"\xef\xbb\xbf" + json.dumps(GOOD).encode())
    record = bad_reason(path)
    assert record.line == 2 and "malformed JSON" in record.reason


def test_utf8_bom_is_stripped_from_text_files(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_bytes(b"\xef\xbb\xbf# Gout\n\nUric acid.")
    [document] = read_documents(docs, 10_000).documents
    assert document.text == "# Gout\n\nUric acid." and document.title == "Gout"


# --- which files a folder source reads ---------------------------------------------------------


def test_supported_suffixes_are_case_insensitive_and_markdown_counts(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.TXT").write_text("upper-case suffix")
    (docs / "b.markdown").write_text("# Lupus\n\nAutoimmune.")
    (docs / "c.Md").write_text("# Gout\n\nJoints.")
    (docs / "d.JSONL").write_text(json.dumps(GOOD) + "\n")
    result = read_documents(docs, 10_000)
    assert [(d.doc_id, d.title) for d in result.documents] == [
        ("a.TXT", "a"),
        ("b.markdown", "Lupus"),
        ("c.Md", "Gout"),
        ("d1", "Asthma"),
    ]
    assert result.ignored == []


def test_unsupported_files_are_reported_as_ignored(tmp_path):
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.txt").write_text("read me")
    (docs / "config.yml").write_text("x: 1")
    (docs / "sub" / "paper.pdf").write_bytes(b"%PDF")
    result = read_documents(docs, 10_000)
    assert [d.doc_id for d in result.documents] == ["a.txt"]
    assert result.ignored == ["config.yml", "sub/paper.pdf"]
    assert result.skipped == []


def test_file_names_that_are_not_utf8_are_refused_not_crashing(tmp_path):
    import os

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / os.fsdecode(b"caf\xe9.txt")).write_text("text")
    with pytest.raises(BadInputError) as error:
        read_documents(docs, 10_000)
    [record] = error.value.records
    assert record.file == "caf\\xe9.txt" and "not valid UTF-8" in record.reason
    str(error.value).encode("utf-8")


def test_broken_symlink_is_a_bad_record(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "gone.txt").symlink_to(docs / "missing.txt")
    with pytest.raises(BadInputError, match="gone.txt: symlink to .*missing.txt, which does not exist"):
        read_documents(docs, 10_000)
