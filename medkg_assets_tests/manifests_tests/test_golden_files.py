"""The golden-file comparison the rollout drill runs on the sample: it passes on the goldens and
fails on any change outside run ids, timestamps, timings and paths."""

import json
import shutil

from medkg_assets_tests.golden import artefacts, differences, golden_path, normalise


def _data_dir_from_goldens(root):
    for name, target in artefacts(root, "medquad_sample", "minilm_cpu").items():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(golden_path(name, "medquad_sample", "minilm_cpu"), target)
    return root


def test_the_goldens_match_themselves(tmp_path):
    assert differences(_data_dir_from_goldens(tmp_path)) == []


def test_a_changed_quality_figure_is_a_difference(tmp_path):
    data_dir = _data_dir_from_goldens(tmp_path)
    summary_path = artefacts(data_dir, "medquad_sample", "minilm_cpu")["processing_summary"]
    summary = json.loads(summary_path.read_text())
    summary["metrics"]["quality"]["reranked"]["ndcg@10"] = 0.5
    summary_path.write_text(json.dumps(summary))
    [problem] = differences(data_dir)
    assert "ndcg@10" in problem and "0.5" in problem


def test_volatile_values_are_masked_and_floats_rounded():
    run = {"run_id": "abc", "metrics": {"durations_s": {"dense": 3.2}, "score": 0.1234567891}}
    assert normalise(run) == {
        "metrics": {"durations_s": "<volatile>", "score": 0.12346},
        "run_id": "<volatile>",
    }
