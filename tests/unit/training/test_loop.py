"""The fine-tune loop on the toy task: it learns (also from scribbles), validates,
reports before and after, keeps the best weights, stops early, is reproducible,
keeps a time budget."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from segstudio.core.errors import TrainingError
from segstudio.core.labelset import UNLABELED
from segstudio.model.files import LoadedModel, new_model
from segstudio.training.data import TrainingData
from segstudio.training.evaluate import evaluate
from segstudio.training.loop import fine_tune
from segstudio.training.recipes import FEW_SHOT
from tests.unit.training.toy import SHAPES, TINY, drive, losses, scribbled, toy_config


def test_fine_tune_learns_the_shapes(data: TrainingData) -> None:
    cfg = toy_config(epochs=25, precision="auto", val_every_epochs=5)
    seen, result = drive(fine_tune(data, arch=TINY, config=cfg))
    assert result is not None and result.stopped_early is None
    steps = [p for p in seen if p.kind == "step"]
    assert len(steps) == 75 and steps[-1].total_steps == 75 and steps[-1].epoch == 25
    assert all(p.loss is not None and np.isfinite(p.loss) for p in steps)
    assert steps[-1].eta_s == 0 and steps[-1].images_per_s > 0
    vals = [p for p in seen if p.kind == "validation" and p.metrics is not None]
    assert [p.epoch for p in vals] == [5, 10, 15, 20, 25]
    assert result.after is vals[-1].metrics and result.after["mean_iou"] > 0.6
    assert result.before is None and result.improved is None  # a new model: nothing to compare
    model = result.model
    assert not model.network.training and next(model.network.parameters()).dtype == torch.float32
    prov = model.info.provenance
    assert prov["train_images"] == 9 and prov["val_images"] == 3 and prov["steps"] == 75
    assert prov["train_names"][0] == "img00.png" and prov["recipe"] == cfg.to_dict()
    assert model.info.metrics["mean_iou"] == result.after["mean_iou"]
    again = evaluate(model, data.val)
    assert abs(again["mean_iou"] - result.after["mean_iou"]) < 0.02


def test_sparse_labels_still_train(data: TrainingData) -> None:
    """Only ~1 % of the pixels labelled (a 4 x 4 blob of each class per image), the rest 255."""
    sparse = scribbled(data, seed=7)
    assert np.mean([(x.labels != UNLABELED).mean() for x in sparse.train]) < 0.02
    _, result = drive(
        fine_tune(sparse, arch=TINY, config=toy_config(epochs=25, val_every_epochs=25))
    )
    assert result is not None and result.after["mean_iou"] > 0.5


def test_fine_tune_from_a_model_reports_before_and_after(data: TrainingData) -> None:
    _, first = drive(fine_tune(data, arch=TINY, config=toy_config(epochs=2)))
    assert first is not None
    _, second = drive(fine_tune(data, init=first.model, config=toy_config(epochs=4)))
    assert second is not None
    assert second.before is not None and second.after is not None
    assert second.before["mean_iou"] == pytest.approx(first.after["mean_iou"], abs=1e-9)
    assert second.improved is (second.after["mean_iou"] > second.before["mean_iou"])
    parent = second.model.info.provenance["parent"]
    assert parent["provenance"]["kind"] == "trained" and "train_names" not in parent["provenance"]


@pytest.fixture(scope="module")
def trained(data: TrainingData) -> LoadedModel:
    """A model trained on the toy task (what a project fine-tunes from)."""
    _, result = drive(fine_tune(data, arch=TINY, config=toy_config(epochs=6)))
    assert result is not None
    return result.model


def test_few_shot_fine_tune_never_lowers_the_validation_score(
    data: TrainingData, trained: LoadedModel
) -> None:
    few = TrainingData(data.train[:3], data.val, data.labelset, data.source)
    # even a recipe far too hot for a trained model cannot make it worse on validation
    for lr in (5e-4, 1.0):
        config = toy_config(**{**FEW_SHOT, "lr": lr, "epochs": 4, "batch_size": 2})
        _, result = drive(fine_tune(few, init=trained, config=config))
        assert result is not None and result.before is not None and result.after is not None
        assert result.after["mean_iou"] >= result.before["mean_iou"]
        assert result.verdict and "validation image(s)" in result.verdict


def test_keep_best_returns_the_starting_weights_when_nothing_beats_them(
    data: TrainingData, trained: LoadedModel
) -> None:
    config = toy_config(epochs=2, lr=5.0, keep_best=True, freeze_bn=True, warmup_steps=0)
    reports, result = drive(fine_tune(data, init=trained, config=config))
    assert result is not None and result.improved is False
    assert "no epoch beat the starting model" in result.verdict
    assert any("kept the starting weights" in r.message for r in reports)
    for key, value in trained.network.state_dict().items():
        torch.testing.assert_close(result.model.network.state_dict()[key], value)


def test_freeze_bn_keeps_the_statistics_and_patience_stops_early(
    data: TrainingData, trained: LoadedModel
) -> None:
    config = toy_config(epochs=30, lr=5.0, freeze_bn=True, keep_best=True, patience=2)
    reports, result = drive(fine_tune(data, init=trained, config=config))
    assert result is not None
    assert any("stopping early" in r.message for r in reports)
    assert result.model.info.provenance["steps"] < 30 * math.ceil(len(data.train) / 3)
    for key, value in trained.network.state_dict().items():
        if key.endswith(("running_mean", "running_var")):
            torch.testing.assert_close(result.model.network.state_dict()[key], value)


def test_no_verdict_on_too_few_validation_pixels(data: TrainingData, trained: LoadedModel) -> None:
    config = toy_config(epochs=1, verdict_pixels=10**9)
    _, result = drive(fine_tune(data, init=trained, config=config))
    assert result is not None and result.improved is None
    assert "too few to judge" in result.verdict


def test_same_seed_same_losses(data: TrainingData) -> None:
    cfg = toy_config(epochs=2, val_every_epochs=2)
    a, _ = drive(fine_tune(data, arch=TINY, config=cfg))
    b, _ = drive(fine_tune(data, arch=TINY, config=cfg))
    c, _ = drive(fine_tune(data, arch=TINY, config=toy_config(epochs=2, seed=1)))
    assert losses(a) == losses(b)
    assert losses(a) != losses(c)


def test_time_budget(data: TrainingData) -> None:
    seen, result = drive(fine_tune(data, arch=TINY, config=toy_config(epochs=None, minutes=0.01)))
    assert result is not None
    steps = [p for p in seen if p.kind == "step"]
    assert steps and steps[-1].total_steps is None
    assert result.model.info.provenance["duration_s"] < 5


def test_fine_tune_argument_errors(data: TrainingData) -> None:
    with pytest.raises(TrainingError, match="exactly one"):
        fine_tune(data)
    with pytest.raises(TrainingError, match="exactly one"):
        fine_tune(data, init=new_model(TINY, SHAPES), arch=TINY)
    with pytest.raises(TrainingError, match="checkpoint folder"):
        fine_tune(data, arch=TINY, resume=True)


def test_final_weights_that_beat_the_start_are_called_better(data: TrainingData) -> None:
    # validated only at the start and at the end: the best seen is the start (step 0), and
    # the final weights, better than it, are kept: the verdict must not say "kept the start"
    _, weak = drive(fine_tune(data, arch=TINY, config=toy_config(epochs=1, lr=1e-4)))
    assert weak is not None
    config = toy_config(epochs=6, keep_best=True, val_every_epochs=100)
    reports, result = drive(fine_tune(data, init=weak.model, config=config))
    assert result is not None and result.before is not None and result.after is not None
    assert result.after["mean_iou"] > result.before["mean_iou"]
    assert result.improved is True
    assert "no epoch beat the starting model" not in result.verdict
    assert not any("kept the starting weights" in r.message for r in reports)


def test_a_new_head_is_not_stopped_early_before_it_has_trained(
    data: TrainingData, trained: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Patience counts only from NEW_HEAD_MIN_STEPS on when the head starts from random
    weights; a kept head may stop at once."""
    from segstudio.core.labelset import LabelClass, LabelSet
    from segstudio.training import loop

    monkeypatch.setattr(loop, "NEW_HEAD_MIN_STEPS", 8)
    renamed = LabelSet(
        "renamed",
        tuple(LabelClass(f"new {c.name}", c.color) for c in data.labelset.classes),
        data.labelset.unlabeled_color,
    )
    other = TrainingData(data.train, data.val, renamed, data.source)
    # nothing changes (no learning rate, frozen batch norms): no validation improves
    config = toy_config(
        epochs=30, lr=1e-12, freeze_bn=True, keep_best=True, patience=1, warmup_steps=0
    )
    reports, result = drive(fine_tune(other, init=trained, config=config))
    assert result is not None and result.model.info.labelset.names == renamed.names
    assert any("stopping early" in r.message for r in reports)
    assert 8 <= result.model.info.provenance["steps"] < 30 * math.ceil(len(data.train) / 3)
    kept_reports, kept = drive(fine_tune(data, init=trained, config=config))
    assert kept is not None and any("stopping early" in r.message for r in kept_reports)
    assert kept.model.info.provenance["steps"] < 8


def test_freeze_bn_with_a_new_head_keeps_only_the_encoders_statistics(
    data: TrainingData, trained: LoadedModel
) -> None:
    """A new decoder's batch norms have no statistics worth keeping: they learn theirs;
    the kept encoder's stay those of the starting model."""
    from segstudio.core.labelset import LabelClass, LabelSet

    renamed = LabelSet(
        "renamed",
        tuple(LabelClass(f"new {c.name}", c.color) for c in data.labelset.classes),
        data.labelset.unlabeled_color,
    )
    other = TrainingData(data.train, data.val, renamed, data.source)
    config = toy_config(epochs=1, freeze_bn=True)
    _, result = drive(fine_tune(other, init=trained, config=config))
    assert result is not None
    before = trained.network.state_dict()
    after = result.model.network.state_dict()
    stats = [k for k in after if k.endswith("running_mean")]
    encoder = [k for k in stats if k.startswith("encoder.")]
    rest = [k for k in stats if not k.startswith("encoder.")]
    assert encoder and rest
    for key in encoder:
        torch.testing.assert_close(after[key], before[key])
    assert all(after[k].abs().sum() > 0 for k in rest)  # a fresh norm starts at zero


def test_freeze_bn_on_a_new_network_freezes_nothing(data: TrainingData) -> None:
    """A network trained from scratch has no statistics to keep: its batch norms learn."""
    _, result = drive(fine_tune(data, arch=TINY, config=toy_config(epochs=1, freeze_bn=True)))
    assert result is not None
    stats = [v for k, v in result.model.network.state_dict().items() if k.endswith("running_mean")]
    assert stats and all(v.abs().sum() > 0 for v in stats)  # a fresh norm starts at zero
