"""Fine-tuning the shipped CrossEncoder for real: the step and time budgets stop it, and what it
saves loads again as a reranker with a trained head."""

import pytest

from medkg_assets.encoders.cross_encoder_training import TrainingBudget, TrainingPair, fine_tune_cross_encoder
from medkg_assets.encoders.rerank import CrossEncoderReranker
from medkg_assets.model_reference import resolve_model
from medkg_assets_tests.conftest import current_settings

pytestmark = pytest.mark.slow

PAIRS = [
    TrainingPair(
        "What are the symptoms of gout ?", "Gout: sudden, severe pain and swelling in a joint.", 1.0
    ),
    TrainingPair("What are the symptoms of gout ?", "Glaucoma: a group of eye diseases.", 0.0),
    TrainingPair("How is asthma treated ?", "Asthma: inhaled corticosteroids control the swelling.", 1.0),
    TrainingPair("How is asthma treated ?", "Anemia: a lack of healthy red blood cells.", 0.0),
] * 5


def _base():
    return resolve_model("models:medkg-ce-minilm-medquad", current_settings().models_dir).location


def test_the_step_budget_stops_training_and_the_saved_model_reranks(tmp_path):
    result = fine_tune_cross_encoder(
        _base(), PAIRS, TrainingBudget(max_steps=3, batch_size=4), 128, tmp_path / "m"
    )
    assert (result.steps, result.pairs_seen, result.stopped_by) == (3, 12, "max_steps")
    assert result.pairs_per_second > 0
    model = CrossEncoderReranker(str(tmp_path / "m"), "cpu", 128)  # a trained head: not refused
    gout, glaucoma = model.score([(PAIRS[0].query, PAIRS[0].passage), (PAIRS[1].query, PAIRS[1].passage)])
    assert gout > glaucoma


def test_the_time_budget_stops_after_the_step_that_crossed_it(tmp_path):
    result = fine_tune_cross_encoder(
        _base(), PAIRS, TrainingBudget(max_seconds=0.001, batch_size=4), 128, tmp_path / "m"
    )
    assert (result.steps, result.stopped_by) == (1, "max_seconds")
    one_pass = fine_tune_cross_encoder(_base(), PAIRS[:8], TrainingBudget(batch_size=4), 128, tmp_path / "n")
    assert (one_pass.steps, one_pass.stopped_by) == (2, "data")


def test_no_pairs_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no training pairs"):
        fine_tune_cross_encoder(_base(), [], TrainingBudget(), 128, tmp_path / "m")
