"""Learn as I paint: strokes on one image teach the live learner, which predicts the next."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QThreadPool

from segstudio.core.labelset import LabelClass, LabelSet, preset
from segstudio.io.project import Project
from segstudio.model.arch import ArchSpec
from segstudio.model.files import load_model, new_model, save_model
from tests.gui.conftest import drag, make_images, open_window, show

ROAD = LabelSet("road", (LabelClass("Tarmac", (1, 1, 1)), LabelClass("Verge", (2, 2, 2))))


@pytest.fixture
def bundled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A small SegNet standing in for the bundled model, with classes of its own."""
    path = save_model(
        tmp_path / "bundled.safetensors",
        new_model(ArchSpec("segnet", {"width": 0.125}), ROAD, seed=0),
    )
    monkeypatch.setenv("SEGSTUDIO_BUNDLED_MODEL", str(path))
    return path


def test_strokes_on_one_image_predict_the_next_within_seconds(
    qtbot, tmp_path: Path, bundled: Path
) -> None:
    folder = make_images(tmp_path / "cells", n=3, size=(90, 120))
    win = open_window(qtbot, folder)
    try:
        # CamVid classes, and the only SegNet knows others: no model fits, so the
        # window learns as the user paints, by default
        assert win.models.path is None
        assert win.action("actionLearnAsIPaint").isChecked()
        assert win.prediction.live.running
        sky, road = 0, 3  # camvid11: Sky, Road
        win.canvas.set_brush_radius(2)
        win.palette.choose(sky)
        drag(win, [(5, 8), (110, 8)])
        drag(win, [(5, 20), (110, 20)])
        win.palette.choose(road)
        drag(win, [(5, 75), (110, 75)])
        drag(win, [(5, 85), (110, 85)])
        labelled = int((win.doc.labels != 255).sum())
        assert 0 < labelled < 0.25 * win.doc.labels.size  # scribbles, not the whole image

        # the live learner fits and predicts the other, unreviewed images in the background
        def predicted(name: str) -> bool:
            return any(r.name == name and r.has_prediction for r in win.project.images())

        qtbot.waitUntil(lambda: predicted("img1.png"), timeout=60_000)
        show(qtbot, win, "img1.png")
        qtbot.waitUntil(lambda: win.doc.prediction is not None, timeout=30_000)
        pred = win.doc.prediction.labels
        assert (pred[5:25] == sky).mean() > 0.9
        assert (pred[70:88] == road).mean() > 0.9
        assert (win.doc.labels == 255).all()  # a prediction, never a label
    finally:
        win.close()
    # closing stopped the worker and left the learner as a model file of the project
    assert not win.prediction.live.running
    live = load_model(folder / ".segstudio" / "models" / "live.safetensors")
    assert live.info.arch.name == "live"
    assert list(live.info.labelset.names) == list(preset("camvid11").names)


def test_off_by_default_when_a_model_fits_and_remembered_per_project(
    qtbot, tmp_path: Path, bundled: Path
) -> None:
    folder = make_images(tmp_path / "roads", n=2)
    with Project.open(folder) as project:
        project.set_labelset(ROAD)  # the "bundled" model fits this project
    win = open_window(qtbot, folder)
    try:
        assert win.models.path == bundled
        assert not win.action("actionLearnAsIPaint").isChecked()
        assert not win.prediction.live.running
        win.action("actionLearnAsIPaint").setChecked(True)
        assert win.prediction.live.running
    finally:
        win.close()
    win = open_window(qtbot, folder)
    try:
        assert win.action("actionLearnAsIPaint").isChecked()  # the project's own choice
        assert win.prediction.live.running
        np.testing.assert_array_equal(win.doc.labels, 255)
    finally:
        win.close()


def _labelled_project(tmp_path: Path, n: int = 6) -> Path:
    """CamVid classes, one image with labels and ``n - 1`` nobody reviewed."""
    folder = make_images(tmp_path / "street", n=n, size=(90, 120))
    with Project.open(folder) as project:
        project.scan()
        project.set_labelset(preset("camvid11"))
        labels = np.full((90, 120), 255, np.uint8)
        labels[:30], labels[60:] = 0, 3  # sky, road
        project.save_labels("img0.png", labels)
    return folder


@pytest.fixture
def slow_predictions(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Every live prediction takes 5 s unless it is cancelled (a big photo on a slow CPU);
    the event is set once one is under way."""
    from segstudio.model.predictor import PredictionCancelled
    from segstudio.training.live import LiveLearner

    real_predict = LiveLearner.predict
    under_way = threading.Event()

    def slow_predict(self, rgb: np.ndarray, *, cancelled=None):
        under_way.set()
        end = time.monotonic() + 5.0
        while time.monotonic() < end:
            if cancelled is not None and cancelled():
                raise PredictionCancelled("prediction cancelled")
            time.sleep(0.01)
        return real_predict(self, rgb, cancelled=cancelled)

    monkeypatch.setattr(LiveLearner, "predict", slow_predict)
    return under_way


def test_stopping_ends_the_learner_within_a_moment_and_keeps_what_it_learnt(
    qtbot, tmp_path: Path, bundled: Path, slow_predictions: threading.Event
) -> None:
    folder = _labelled_project(tmp_path)
    win = open_window(qtbot, folder)
    live = win.prediction.live
    assert live.running  # no model fits the classes: it learns as the user paints
    # it learnt from img0 and re-predicts the unreviewed images, one by one
    qtbot.waitUntil(slow_predictions.is_set, timeout=60_000)
    live.stop(wait_s=0)  # asked; the window does not wait here
    assert not live.running
    pool = QThreadPool.globalInstance()
    qtbot.waitUntil(lambda: pool.activeThreadCount() == 0, timeout=2_000)
    assert not live.busy
    # on its way out it stored what it learnt as the project's live model
    assert (folder / ".segstudio" / "models" / "live.safetensors").is_file()
    win.close()


def test_closing_the_window_while_it_learns_leaves_no_worker_running(
    qtbot, tmp_path: Path, bundled: Path, slow_predictions: threading.Event
) -> None:
    folder = _labelled_project(tmp_path)
    win = open_window(qtbot, folder)
    live = win.prediction.live
    qtbot.waitUntil(slow_predictions.is_set, timeout=60_000)
    win.close()
    assert not live.running and not live.busy  # closing waited for the worker's end
    pool = QThreadPool.globalInstance()
    qtbot.waitUntil(lambda: pool.activeThreadCount() == 0, timeout=1_000)


def test_the_models_list_shows_the_live_model_once_it_is_saved(
    qtbot, tmp_path: Path, bundled: Path
) -> None:
    folder = make_images(tmp_path / "cells", n=2, size=(90, 120))
    win = open_window(qtbot, folder)
    panel = win.prediction.models_panel
    live = folder / ".segstudio" / "models" / "live.safetensors"
    try:
        qtbot.waitUntil(lambda: panel.loaded, timeout=10_000)
        assert panel.row_of(live) is None
        win.canvas.set_brush_radius(2)
        win.palette.choose(0)
        drag(win, [(5, 8), (110, 8)])
        win.palette.choose(3)
        drag(win, [(5, 75), (110, 75)])
        qtbot.waitUntil(live.is_file, timeout=60_000)
        # no click on Refresh: the list reads the models again by itself
        qtbot.waitUntil(lambda: panel.loaded and panel.row_of(live) is not None, timeout=10_000)
    finally:
        win.close()


def test_the_learner_replays_unlabelled_images_when_its_base_knows_every_class(
    tmp_path: Path, bundled: Path
) -> None:
    """The worker learns the labelled image, then the base's sure answers on the
    unlabelled ones (all of them here: fewer than ten), and refits with them."""
    import torch

    from segstudio.gui.live_learning import _Queue, _serve

    sure = load_model(bundled)
    with torch.no_grad():  # untrained, it is unsure everywhere; now sure of "Tarmac"
        sure.network.classifier.bias[0] += 10.0
    bundled = save_model(tmp_path / "sure.safetensors", sure)
    folder = make_images(tmp_path / "roads", n=4, size=(64, 96))
    with Project.open(folder) as project:
        project.scan()
        project.set_labelset(ROAD)  # the base model knows both classes by name
        labels = np.full((64, 96), 255, np.uint8)
        labels[:20], labels[44:] = 0, 1
        project.save_labels("img0.png", labels)
        queue = _Queue()
        said: list[str] = []
        worker = _serve(project, bundled, queue)
        for kind, what in worker:
            if kind == "status":
                said.append(what)
            if any("sure answers on 3 other(s)" in s for s in said):
                queue.stop()
        assert said[0].startswith("Learn as I paint: reading labelled image 1/1")
        assert any(s.startswith("Learnt from 1 image(s), ") for s in said)  # before replay
        assert any("Learnt from 1 image(s) and the model's sure answers on 3" in s for s in said)


def test_a_fine_tune_while_it_learns_is_judged_against_the_live_learner(
    qtbot, tmp_path: Path, bundled: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Learn as I paint on: the user labels with its predictions, so one click is told
    the SegNet it reads (the verdict is then against it); off, nothing."""
    from segstudio.session.training import FineTuneRequest

    started: list[tuple[Path | None, Path | None]] = []

    def run(project, active_model, request, cancel, resume=None, keep=None, live_base=None):
        started.append((active_model, live_base))
        return None
        yield  # a generator, as run_training is

    monkeypatch.setattr("segstudio.gui.training.run_training", run)
    folder = _labelled_project(tmp_path)
    win = open_window(qtbot, folder)
    try:
        assert win.prediction.live.running  # no model knows the classes: on by default
        win.training.fine_tune(FineTuneRequest())
        assert "judged against Learn as I paint" in win.training_panel.status.text()
        qtbot.waitUntil(lambda: len(started) == 1 and win.training.jobs.kind is None)
        assert started == [(bundled, bundled)]
        win.prediction.set_live(False)
        win.training.fine_tune(FineTuneRequest())
        qtbot.waitUntil(lambda: len(started) == 2 and win.training.jobs.kind is None)
        assert started[1] == (bundled, None)
    finally:
        win.close()


def test_a_new_active_model_is_what_it_learns_on_from_then(
    qtbot, tmp_path: Path, bundled: Path
) -> None:
    """Use on a fine-tuned model while Learn as I paint runs: the learner starts again
    from that model (it read the old one until now); the same base again: no restart."""
    folder = _labelled_project(tmp_path)
    tuned = save_model(
        tmp_path / "tuned.safetensors",
        new_model(ArchSpec("segnet", {"width": 0.125}), preset("camvid11"), seed=3),
    )
    win = open_window(qtbot, folder)
    live = win.prediction.live
    try:
        assert live.running and live.base == bundled
        assert win.prediction.set_model(tuned)
        assert live.running and live.base == tuned
        worker = live._worker
        assert win.prediction.set_model(tuned)  # the same base: it goes on
        assert live._worker is worker
    finally:
        win.close()
