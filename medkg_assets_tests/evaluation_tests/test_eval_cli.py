"""`medkg eval`: a query set scored against a built namespace × profile with the rerank manifest's
pipeline — the table, one TREC run file per stage, and the manifest's own figures for its own set."""

import json

import pytest

from medkg_assets.cli import main as medkg
from medkg_assets.stages.reader import STAGES
from medkg_assets.storage.layout import ArtifactLayout
from medkg_assets_tests.conftest import current_settings
from medkg_assets_tests.pipeline import index, ingest

COLUMNS = ["nDCG@10", "MRR@10", "Recall@10", "Recall@100", "P@10"]


def eval_files(config_dir):
    data = config_dir.parent / "data" / "tiny"
    return ["--queries", str(data / "queries.jsonl"), "--qrels", str(data / "qrels" / "dev.tsv")]


def table(out: str) -> dict[str, dict[str, float]]:
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("stage "))
    assert lines[start].split()[1:6] == COLUMNS
    rows = {}
    for line in lines[start + 1 :]:
        cells = line.split()
        if not cells or cells[0] not in STAGES:
            break
        rows[cells[0]] = dict(zip(COLUMNS, map(float, cells[1:6]), strict=True))
        low, middle, high = (float(cells[i]) for i in (6, 8, 10))
        assert low <= middle <= high
    return rows


@pytest.mark.slow
def test_eval_scores_every_stage_as_the_rerank_manifest_does(config_dir, instance, tmp_path, capsys):
    ingest(instance, "tiny")
    index(instance, "tiny", "minilm_cpu")
    capsys.readouterr()
    run_dir = tmp_path / "runs"
    args = ["eval", "--namespace", "tiny", "--profile", "minilm_cpu", *eval_files(config_dir)]
    assert medkg([*args, "--run-dir", str(run_dir), "-k", "5"]) == 0
    out = capsys.readouterr().out
    assert "namespace=tiny profile=minilm_cpu queries=" in out
    rows = table(out)
    assert list(rows) == list(STAGES)
    manifest = json.loads(
        ArtifactLayout(current_settings().data_dir).rerank_manifest("tiny", "minilm_cpu").read_text()
    )
    for stage, figures in manifest["quality"].items():  # same pipeline, same set → same figures
        assert rows[stage]["nDCG@10"] == figures["ndcg@10"], stage
        assert rows[stage]["MRR@10"] == figures["mrr@10"], stage
        assert rows[stage]["Recall@10"] == figures["recall@10"], stage
    assert rows["reranked"]["nDCG@10"] == manifest["quality"]["reranked"]["ndcg@10"]
    queries = {e["query_id"] for e in manifest["entries"]}
    assert sorted(p.name for p in run_dir.iterdir()) == sorted(f"{s}.run" for s in STAGES)
    for stage in STAGES:
        lines = (run_dir / f"{stage}.run").read_text().splitlines()
        assert lines, stage
        per_query: dict[str, list[int]] = {}
        for line in lines:
            qid, q0, doc_id, rank, score, tag = line.split(" ")
            assert q0 == "Q0" and tag == stage and doc_id
            float(score)  # a number
            per_query.setdefault(qid, []).append(int(rank))
        assert set(per_query) == queries
        assert all(
            ranks == list(range(1, len(ranks) + 1)) and len(ranks) <= 5 for ranks in per_query.values()
        )
    # The reranked run file is the manifest's final document ranking.
    final = {
        e["query_id"]: list(dict.fromkeys(c["doc_id"] for c in e["reranked"]))[:5]
        for e in manifest["entries"]
    }
    written = {}
    for line in (run_dir / "reranked.run").read_text().splitlines():
        qid, _, doc_id, *_ = line.split(" ")
        written.setdefault(qid, []).append(doc_id)
    assert written == final
    # A subset of stages, without run files.
    assert medkg([*args, "--stages", "bm25,hybrid"]) == 0
    assert list(table(capsys.readouterr().out)) == ["bm25", "hybrid"]


def test_unknown_namespace_is_a_one_line_error(config_dir, data_dir, capsys):
    assert medkg(["eval", "--namespace", "nope", *eval_files(config_dir)]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "tiny" in err and "Traceback" not in err


def test_missing_eval_file_is_a_one_line_error(config_dir, data_dir, tmp_path, capsys):
    args = ["eval", "--namespace", "tiny", "--queries", str(tmp_path / "none.jsonl"), "--qrels", "x.tsv"]
    assert medkg(args) == 2
    err = capsys.readouterr().err
    assert "no such file" in err and "none.jsonl" in err and len(err.strip().splitlines()) == 1


def test_unknown_stage_is_a_one_line_error(config_dir, data_dir, capsys):
    assert medkg(["eval", "--namespace", "tiny", *eval_files(config_dir), "--stages", "dense,colbert"]) == 2
    assert "unknown stage(s) colbert" in capsys.readouterr().err


def test_unbuilt_namespace_says_which_command_builds_it(config_dir, data_dir, capsys):
    assert medkg(["eval", "--namespace", "tiny", "--profile", "minilm_cpu", *eval_files(config_dir)]) == 2
    err = capsys.readouterr().err
    assert "not built yet" in err and "Traceback" not in err
