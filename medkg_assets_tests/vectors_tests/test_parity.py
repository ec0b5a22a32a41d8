"""Hashes are order-independent; the parity baseline moves only with chunks or fingerprint."""

import json

import numpy as np

from medkg_assets.vectors.hashing import HASH_SCHEME, chunks_digest, dense_artifact_hash
from medkg_assets.vectors.parity import evaluate_parity

VECTORS = np.arange(6, dtype=np.float32).reshape(3, 2)


def test_dense_hash_ignores_row_order_but_not_values():
    base = dense_artifact_hash([(["a", "b", "c"], VECTORS)])
    assert dense_artifact_hash([(["c", "a", "b"], VECTORS[[2, 0, 1]])]) == base
    changed = VECTORS.copy()
    changed[1, 1] += 1e-6
    assert dense_artifact_hash([(["a", "b", "c"], changed)]) != base


def test_chunks_digest_ignores_order():
    assert chunks_digest([("a", "1"), ("b", "2")]) == chunks_digest([("b", "2"), ("a", "1")])


def test_first_run_records_then_same_inputs_compare(tmp_path):
    path = tmp_path / "baseline.json"
    first = evaluate_parity(path, "chunks", "fp", "h1")
    assert first.passed and first.recorded
    assert evaluate_parity(path, "chunks", "fp", "h1").passed
    drift = evaluate_parity(path, "chunks", "fp", "h2")
    assert not drift.passed and drift.baseline_hash == "h1"


def test_changed_chunks_or_fingerprint_rerecord(tmp_path):
    path = tmp_path / "baseline.json"
    evaluate_parity(path, "chunks", "fp", "h1")
    assert evaluate_parity(path, "chunks2", "fp", "h2").recorded
    assert evaluate_parity(path, "chunks2", "fp2", "h3").recorded
    assert not evaluate_parity(path, "chunks2", "fp2", "h4").passed


def test_dense_hash_streams_blocks_in_any_order():
    whole = dense_artifact_hash([(["a", "b", "c"], VECTORS)])
    assert dense_artifact_hash([(["c"], VECTORS[2:]), (["a", "b"], VECTORS[:2])]) == whole
    assert dense_artifact_hash([(["a", "b"], VECTORS[:2])]) != whole  # a missing row shows
    duplicated = dense_artifact_hash([(["a", "b", "c"], VECTORS), (["c"], VECTORS[2:])])
    assert duplicated != whole  # a row written twice shows too


def test_a_baseline_from_an_older_hash_scheme_is_rerecorded_not_failed(tmp_path):
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps({"chunks_digest": "chunks", "fingerprint": "fp", "dense_hash": "old"}))
    result = evaluate_parity(path, "chunks", "fp", "new")
    assert result.passed and result.recorded and "hash scheme changed" in result.reason
    assert json.loads(path.read_text())["scheme"] == HASH_SCHEME
    assert not evaluate_parity(path, "chunks", "fp", "drifted").passed
