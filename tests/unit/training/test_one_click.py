"""The one-click rule (session.training.one_click): a verdict on held-out images,
then, with ``refit_all``, the same recipe once more on every labelled image."""

from __future__ import annotations

import pytest
import torch

from segstudio.core.labelset import preset
from segstudio.model.arch import ArchSpec
from segstudio.model.files import LoadedModel, load_model, new_model, save_model
from segstudio.session.training import one_click
from segstudio.training.data import TrainingData
from segstudio.training.loop import fine_tune
from segstudio.training.recipes import FEW_SHOT
from tests.unit.training.toy import TINY, drive, toy_config


@pytest.fixture(scope="module")
def trained(data: TrainingData) -> LoadedModel:
    """A model trained a little on the toy task (what a project fine-tunes from)."""
    _, result = drive(fine_tune(data, arch=TINY, config=toy_config(epochs=3)))
    assert result is not None
    return result.model


def test_refit_trains_on_every_image_and_keeps_the_held_out_verdict(
    data: TrainingData, trained: LoadedModel
) -> None:
    few = TrainingData(data.train[:4], data.val, data.labelset, data.source)
    config = toy_config(**{**FEW_SHOT, "refit_all": True, "epochs": 4, "batch_size": 2, "lr": 1e-2})
    reports, result = drive(one_click(few, trained, config))
    assert result is not None and result.before is not None and result.after is not None
    assert result.improved is True  # the toy start is far from done: the first run helps
    prov = result.model.info.provenance
    refit = prov["refit"]
    # as many epochs as the kept weights had, on the 4 + 3 images
    assert refit["images"] == 7
    assert refit["epochs"] == prov["best_step"] // 2
    assert refit["steps"] == refit["epochs"] * 4
    assert any(r.message.startswith("refit:") for r in reports)
    # the verdict is the held-out one, and says which model is handed back
    assert f"{result.before['mean_iou']:.3f} -> {result.after['mean_iou']:.3f}" in result.verdict
    assert "all 7 labelled images" in result.verdict
    assert result.model.info.metrics["mean_iou"] == result.after["mean_iou"]
    # the handed-back weights are not the first run's: they learnt from the held-out images
    first = drive(fine_tune(few, init=trained, config=config))[1]
    assert first is not None
    assert any(
        not torch.equal(v, first.model.network.state_dict()[k])
        for k, v in result.model.network.state_dict().items()
    )


def test_no_refit_when_the_first_run_is_not_better(
    data: TrainingData, trained: LoadedModel
) -> None:
    config = toy_config(
        epochs=2, lr=5.0, keep_best=True, freeze_bn=True, warmup_steps=0, refit_all=True
    )
    reports, result = drive(one_click(data, trained, config))
    assert result is not None and result.improved is False
    assert "refit" not in result.model.info.provenance
    assert not any(r.message.startswith("refit:") for r in reports)
    for key, value in trained.network.state_dict().items():
        torch.testing.assert_close(result.model.network.state_dict()[key], value)


def test_without_refit_all_one_click_is_the_plain_fine_tune(
    data: TrainingData, trained: LoadedModel
) -> None:
    config = toy_config(**{**FEW_SHOT, "refit_all": False, "epochs": 2, "batch_size": 3})
    _, result = drive(one_click(data, trained, config))
    _, plain = drive(fine_tune(data, init=trained, config=config))
    assert result is not None and plain is not None
    assert "refit" not in result.model.info.provenance
    assert result.after == plain.after


def test_live_head_is_judged_on_the_held_out_images_then_fitted_on_all(
    data: TrainingData, tmp_path
) -> None:
    start = new_model(ArchSpec("segnet", {"width": 0.125}), data.labelset, seed=0)
    _, warm = drive(fine_tune(data, init=start, config=toy_config(epochs=1)))
    assert warm is not None
    warm_path = save_model(tmp_path / "warm.safetensors", warm.model)
    config = toy_config(**{**FEW_SHOT, "live_head": True, "epochs": 1, "batch_size": 3})
    reports, result = drive(one_click(data, load_model(warm_path), config))
    assert result is not None and result.before is not None and result.after is not None
    # the colours of the shapes are features of the live head: it beats the barely
    # trained start on the held-out images, so it is the model handed back
    assert result.model.info.arch.name == "live"
    assert result.improved is True and result.after["mean_iou"] > result.before["mean_iou"]
    assert result.model.info.metrics["mean_iou"] == result.after["mean_iou"]
    prov = result.model.info.provenance
    assert prov["live_head"]["images"] == len(data.train) + len(data.val)
    assert prov["deep"]["train_images"] == len(data.train)
    # the fine-tuned network in between was never saved: the parent is where it started
    assert prov["parent"]["path"] == str(warm_path) == prov["deep"]["parent"]["path"]
    assert f"head fitted on all {len(data.train) + len(data.val)}" in result.verdict
    assert any(r.message.startswith("live head:") for r in reports)


def test_replay_trains_on_the_starting_models_sure_answers_too(
    data: TrainingData, trained: LoadedModel, tmp_path
) -> None:
    """``replay``: the unlabelled images join the training images, labelled with the
    starting model's answers where it is sure (>= 0.9) and unlabelled elsewhere."""
    import numpy as np
    from PIL import Image

    unlabelled = tuple(s.image_path for s in data.train[4:])
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)  # skipped, not fatal
    few = TrainingData(data.train[:4], data.val, data.labelset, data.source, (*unlabelled, broken))
    config = toy_config(**{**FEW_SHOT, "replay": True, "epochs": 2, "batch_size": 2})
    reports, result = drive(one_click(few, trained, config))
    assert result is not None
    prov = result.model.info.provenance
    assert prov["train_images"] == 4 and prov["replayed_images"] == len(unlabelled)
    assert prov["replayed_names"] == [p.name for p in unlabelled]
    assert prov["train_names"] == [s.name for s in few.train]
    notice = [r.message for r in reports if "sure answers" in r.message]
    assert notice == [
        f"also learning the starting model's sure answers on {len(unlabelled)} unlabelled "
        "image(s), so that it keeps what it knew (they count among the training images below)"
    ]
    # without the option, or from a model of other classes, nothing is replayed
    plain = toy_config(**{**FEW_SHOT, "epochs": 1, "batch_size": 2})
    _, result = drive(one_click(few, trained, plain))
    assert result is not None and result.model.info.provenance["train_images"] == 4
    other = new_model(ArchSpec("segnet_basic", {"width": 0.25, "depth": 2}), preset("voc"))
    _, result = drive(one_click(few, other, config))
    assert result is not None and result.model.info.provenance["train_images"] == 4
    assert np.asarray(Image.open(unlabelled[0])).ndim == 3  # the images themselves untouched


def test_a_cancel_while_replaying_stops_the_fine_tune(
    data: TrainingData, trained: LoadedModel
) -> None:
    from segstudio.training.step import TrainingCancelled

    few = TrainingData(
        data.train[:4],
        data.val,
        data.labelset,
        data.source,
        tuple(s.image_path for s in data.train[4:]),
    )
    config = toy_config(**{**FEW_SHOT, "epochs": 1, "batch_size": 2})
    with pytest.raises(TrainingCancelled):
        drive(one_click(few, trained, config, cancel=lambda: True))


def test_live_head_for_new_classes_is_judged_against_the_network_alone(
    data: TrainingData,
) -> None:
    """From a model of other classes the start cannot be scored: the live head stands
    when it beats the fine-tuned network (a new head) on the held-out images."""
    other = new_model(ArchSpec("segnet", {"width": 0.125}), preset("voc"), seed=0)
    config = toy_config(**{**FEW_SHOT, "live_head": True, "epochs": 1, "batch_size": 3})
    reports, result = drive(one_click(data, other, config))
    assert result is not None and result.before is None and result.after is not None
    network_alone = result.model.info.provenance["deep"]["after_mean_iou"]
    assert result.model.info.arch.name == "live"
    assert result.after["mean_iou"] > network_alone
    assert result.improved is None and result.verdict.startswith("new head or new model")
    assert result.model.info.provenance["before_mean_iou"] is None
    assert any(r.message.startswith("live head: mIoU") for r in reports)


@pytest.fixture(scope="module")
def live_in_use(data: TrainingData, tmp_path_factory) -> LoadedModel:
    """A live model fitted on every labelled image (as "Learn as I paint" leaves it),
    on an untrained SegNet (its colour features carry it), saved and loaded as the
    project's active model."""
    from segstudio.training.live import LiveConfig, LiveLearner

    start = new_model(ArchSpec("segnet", {"width": 0.125}), data.labelset, seed=0)
    learner = LiveLearner(start, data.labelset, LiveConfig(steps=100))
    for sample in data.train + data.val:
        rgb, labels, _ = sample.load()
        learner.add_image(sample.name, rgb, labels)
    learner.fit()
    path = tmp_path_factory.mktemp("live") / "live.safetensors"
    return load_model(save_model(path, learner.model()))


def test_from_a_live_model_the_verdict_is_against_that_live_learner(
    data: TrainingData, live_in_use: LoadedModel
) -> None:
    """The live model in use learnt the held-out images too: it is scored as a head
    of its recipe refitted on the training images alone, on its own SegNet."""
    from segstudio.model.live import base_model
    from segstudio.training.evaluate import evaluate
    from segstudio.training.live import LiveLearner

    config = toy_config(**{**FEW_SHOT, "live_head": True, "epochs": 1, "batch_size": 3})
    reports, result = drive(one_click(data, live_in_use, config))
    assert result is not None and result.before is not None and result.after is not None
    fresh = LiveLearner(base_model(live_in_use), data.labelset)
    for sample in data.train:
        rgb, labels, _ = sample.load()
        fresh.add_image(sample.name, rgb, labels)
    fresh.fit()
    expected = evaluate(fresh.model(), data.val)["mean_iou"]
    assert result.before["mean_iou"] == pytest.approx(expected, abs=1e-6)
    assert result.improved is (result.after["mean_iou"] > result.before["mean_iou"])
    assert "than the live learner in use on" in result.verdict
    assert "that learner's head refitted on the same training images" in result.verdict
    prov = result.model.info.provenance
    assert prov["against_live"]["base"] == str(live_in_use.path)  # where its SegNet is
    assert prov["against_live"]["after"]["mean_iou"] == result.before["mean_iou"]
    assert any(r.message.startswith("the live learner in use") for r in reports)


def test_a_run_that_does_not_beat_the_live_learner_in_use_says_keep_it(
    data: TrainingData, live_in_use: LoadedModel
) -> None:
    """The deep run alone (no live head), one epoch from an untrained SegNet: the
    live learner's colour features beat it on the held-out shapes, so the verdict
    is "NOT better", whatever the network gained on its own start."""
    config = toy_config(**{**FEW_SHOT, "live_head": False, "epochs": 1, "batch_size": 3})
    _, result = drive(one_click(data, live_in_use, config))
    assert result is not None and result.before is not None and result.after is not None
    assert result.after["mean_iou"] < result.before["mean_iou"]
    assert result.improved is False
    assert result.verdict.startswith("NOT better than the live learner in use on")
    assert "; keep using it. The run: " in result.verdict
    assert result.model.info.arch.name == "segnet"  # handed back all the same, not used


def test_learn_as_i_paint_on_a_segnet_is_what_the_verdict_is_against(
    data: TrainingData, live_in_use: LoadedModel
) -> None:
    """The window's case: the active model is a SegNet (or none: the bundled one) and
    "Learn as I paint" reads it; one click trains it and is judged against that."""
    from segstudio.model.live import base_model

    segnet = base_model(live_in_use)
    config = toy_config(**{**FEW_SHOT, "live_head": False, "epochs": 1, "batch_size": 3})
    _, judged = drive(one_click(data, segnet, config, live_base=segnet))
    _, plain = drive(one_click(data, segnet, config))
    assert judged is not None and plain is not None
    assert plain.verdict.startswith("better on") or plain.verdict.startswith("NOT better on")
    assert judged.verdict.startswith("NOT better than the live learner in use on")
    assert judged.after == plain.after  # the same run, judged against another bar
    assert judged.before["mean_iou"] > plain.before["mean_iou"]


def test_the_live_learner_it_is_judged_against_learns_as_learn_as_i_paint_does(
    data: TrainingData, live_in_use: LoadedModel
) -> None:
    """With replay on, the deep run also trains on the start model's sure answers as
    labelled images; the live learner in use does not: it has the labelled images
    and replays at its own weight. The bar is that learner, not one fed both."""
    from segstudio.io.images import read_image
    from segstudio.model.live import base_model
    from segstudio.training.evaluate import evaluate
    from segstudio.training.live import LiveLearner
    from segstudio.training.live_quick import spread

    segnet = base_model(live_in_use)
    unlabelled = tuple(s.image_path for s in data.train[4:])
    few = TrainingData(data.train[:4], data.val, data.labelset, data.source, unlabelled)
    config = toy_config(**{**FEW_SHOT, "live_head": False, "epochs": 1, "batch_size": 2})
    reports, result = drive(one_click(few, segnet, config, live_base=segnet))
    assert result is not None and result.before is not None
    assert result.model.info.provenance["replayed_images"] == len(unlabelled)
    said = [r.message for r in reports if r.message.startswith("the live learner in use")]
    assert said and "the same 4 labelled training image(s)" in said[0]
    fresh = LiveLearner(segnet, data.labelset)
    for sample in few.train:
        rgb, labels, _ = sample.load()
        fresh.add_image(sample.name, rgb, labels)
    assert fresh.replays
    for path in spread(unlabelled):
        fresh.add_replay(str(path), read_image(path).rgb)
    fresh.fit()
    expected = evaluate(fresh.model(), few.val)["mean_iou"]
    assert result.before["mean_iou"] == pytest.approx(expected, abs=1e-6)
