"""Model in the loop: predictions run in a worker while the user keeps painting."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QTimer

from segstudio.core.labelset import UNLABELED, preset
from segstudio.gui.jobs import JobKind
from segstudio.io.project import ImageStatus
from segstudio.model.arch import ArchSpec
from segstudio.model.files import new_model, save_model
from tests.gui.conftest import drag, make_images, open_window, show


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    model = new_model(ArchSpec("segnet", {"width": 0.5}), preset("camvid11"), seed=0)
    return save_model(tmp_path / "segnet.safetensors", model)


@pytest.fixture
def big_folder(tmp_path: Path) -> Path:
    return make_images(tmp_path / "big", n=8, size=(360, 480))


def test_predict_all_runs_in_background_and_respects_human_work(
    qtbot, big_folder: Path, model_file: Path
) -> None:
    win = open_window(qtbot, big_folder)
    win.prediction.set_model(model_file)
    win.action("actionAutoPredict").setChecked(False)  # only Predict all predicts here
    # a reviewed image is never predicted
    show(qtbot, win, "img7.png")
    win.editing.toggle_reviewed()
    show(qtbot, win, "img0.png")

    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(10)
    win.action("actionPredictAll").trigger()
    assert win.jobs.kind is JobKind.PREDICT_ALL
    # the user keeps painting while the model runs
    win.palette.choose(9)
    drag(win, [(10, 10), (100, 10)])
    assert win.jobs.running, "the job ended before the paint: the test proves nothing"
    assert win.doc.labels[10, 50] == 9
    painted = win.doc.labels.copy()
    qtbot.waitUntil(lambda: not win.jobs.running, timeout=120_000)
    timer.stop()
    assert len(ticks) > 5  # the event loop ran during the job

    win.editing.save_now()
    records = {r.name: r for r in win.project.images()}
    assert records["img7.png"].status is ImageStatus.REVIEWED
    assert not records["img7.png"].has_prediction
    assert records["img1.png"].status is ImageStatus.PREDICTED
    assert records["img0.png"].status is ImageStatus.IN_PROGRESS  # painted: not downgraded
    # predictions never overwrite painted pixels; they live in their own layer
    np.testing.assert_array_equal(win.doc.labels, painted)
    assert win.doc.prediction is not None
    assert win.canvas.prediction_item.values is not None
    assert win.doc.prediction.labels.shape == (360, 480)
    # accept the prediction into the unlabeled pixels only, as one undo step
    win.action("actionAcceptPrediction").trigger()
    assert (win.doc.labels != UNLABELED).all()
    assert win.doc.labels[10, 50] == 9
    win.action("actionUndo").trigger()
    np.testing.assert_array_equal(win.doc.labels, painted)
    # go to the least confident image
    win.action("actionLeastConfident").trigger()
    least = win.project.least_confident()
    qtbot.waitUntil(lambda: win.doc.name == least)
    win.close()


def test_predict_cancel(qtbot, big_folder: Path, model_file: Path) -> None:
    win = open_window(qtbot, big_folder)
    win.prediction.set_model(model_file)
    win.action("actionPredictAll").trigger()
    qtbot.waitUntil(lambda: win.jobs.progress.value() >= 1, timeout=60_000)
    win.action("actionCancelJob").trigger()
    qtbot.waitUntil(lambda: not win.jobs.running, timeout=10_000)
    predicted = [r for r in win.project.images() if r.has_prediction]
    assert 1 <= len(predicted) < 8
    win.close()


def test_model_with_other_classes_is_refused(
    qtbot, folder: Path, tmp_path: Path, monkeypatch
) -> None:
    from PySide6.QtWidgets import QMessageBox

    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: shown.append(a[2]))
    voc = save_model(
        tmp_path / "voc.safetensors",
        new_model(ArchSpec("segnet_basic", {"width": 0.25}), preset("voc")),
    )
    win = open_window(qtbot, folder)
    win.prediction.set_model(voc)
    win.action("actionPredictImage").trigger()
    qtbot.waitUntil(lambda: not win.jobs.running, timeout=60_000)
    assert shown and "classes" in shown[0]
    assert win.doc.prediction is None
    win.close()


def test_a_new_image_is_predicted_when_shown(
    qtbot, folder: Path, model_file: Path, monkeypatch
) -> None:
    monkeypatch.setenv("SEGSTUDIO_BUNDLED_MODEL", str(model_file))  # the default model
    win = open_window(qtbot, folder)
    assert win.models.path == model_file
    assert win.action("actionAutoPredict").isChecked()  # on by default
    assert not win.jobs.running  # it is no job: every action stays available
    win.images.select("img1.png")  # shown while img0 may still be predicted
    qtbot.waitUntil(lambda: win.doc.name == "img1.png")
    qtbot.waitUntil(lambda: win.doc.prediction is not None, timeout=60_000)
    qtbot.waitUntil(lambda: not win.prediction.auto.busy, timeout=60_000)
    assert win.project.record("img0.png").has_prediction
    assert win.project.record("img1.png").has_prediction
    # a reviewed image is left alone
    win.project.set_status("img2.png", ImageStatus.REVIEWED)
    win.images.select("img2.png")
    qtbot.waitUntil(lambda: win.doc.name == "img2.png")
    assert not win.prediction.auto.busy and win.doc.prediction is None
    # switched off, nothing is predicted; the choice is kept with the project
    win.project.set_status("img2.png", ImageStatus.IN_PROGRESS)
    win.action("actionAutoPredict").setChecked(False)
    win.close()
    win = open_window(qtbot, folder)
    assert not win.action("actionAutoPredict").isChecked()
    win.images.select("img2.png")
    qtbot.waitUntil(lambda: win.doc.name == "img2.png")
    assert not win.prediction.auto.busy and win.doc.prediction is None
    assert not win.project.record("img2.png").has_prediction
    win.close()


def test_jobs_start_while_the_shown_image_is_predicted(
    qtbot, folder: Path, model_file: Path, monkeypatch
) -> None:
    monkeypatch.setenv("SEGSTUDIO_BUNDLED_MODEL", str(model_file))
    win = open_window(qtbot, folder)
    qtbot.waitUntil(lambda: not win.prediction.auto.busy, timeout=60_000)
    win.action("actionAutoPredict").setChecked(False)
    win.images.select("img1.png")
    qtbot.waitUntil(lambda: win.doc.name == "img1.png")
    win.action("actionAutoPredict").setChecked(True)
    win.prediction.auto_predict()  # as when the image is shown
    assert win.prediction.auto.busy
    assert win.action("actionPredictAll").isEnabled()
    win.prediction.predict_all()  # not refused
    assert win.jobs.kind is JobKind.PREDICT_ALL
    qtbot.waitUntil(lambda: not win.jobs.running and not win.prediction.auto.busy, timeout=60_000)
    assert all(r.has_prediction for r in win.project.images())
    win.close()


def test_a_failing_model_says_so_once_in_the_status_bar(
    qtbot, folder: Path, tmp_path: Path, monkeypatch
) -> None:
    from PySide6.QtWidgets import QMessageBox

    voc = save_model(
        tmp_path / "voc.safetensors",
        new_model(ArchSpec("segnet", {"width": 0.125}), preset("voc")),
    )
    monkeypatch.setattr(QMessageBox, "warning", lambda *a: pytest.fail(f"a dialog: {a[2]}"))
    win = open_window(qtbot, folder)
    win.prediction.set_model(voc)  # its classes are not the project's
    win.images.select("img1.png")
    qtbot.waitUntil(lambda: win.prediction.auto_failed == voc, timeout=60_000)
    assert "Automatic prediction stopped" in win.statusBar().currentMessage()
    qtbot.waitUntil(lambda: not win.prediction.auto.busy)
    win.images.select("img2.png")
    qtbot.waitUntil(lambda: win.doc.name == "img2.png")
    assert not win.prediction.auto.busy  # not tried again with that model
    win.close()


def test_canvas_layers_match_the_panel_in_a_new_project(
    qtbot, folder: Path, model_file: Path, tmp_path: Path, monkeypatch
) -> None:
    from segstudio.gui.canvas import Layer

    monkeypatch.setenv("SEGSTUDIO_BUNDLED_MODEL", str(model_file))
    win = open_window(qtbot, folder)
    qtbot.waitUntil(lambda: win.doc.prediction is not None, timeout=60_000)
    panel = win.layers_panel
    for layer, item in win.canvas.layers.items():
        assert item.isVisible() == panel.visible[layer].isChecked(), layer
    assert not win.canvas.confidence_item.isVisible()  # off by default: no orange veil
    assert win.canvas.prediction_item.isVisible()
    panel.visible[Layer.CONFIDENCE].setChecked(True)
    assert win.canvas.confidence_item.isVisible()
    qtbot.waitUntil(lambda: not win.prediction.auto.busy, timeout=60_000)
    win.action("actionToggleOutline").setChecked(True)
    assert panel.outline[Layer.LABELS].isChecked()
    # another project, never opened before, starts from the defaults again
    win.open_folder(make_images(tmp_path / "other", n=1))
    qtbot.waitUntil(lambda: win.doc is not None and win.doc.name == "img0.png")
    assert not panel.visible[Layer.CONFIDENCE].isChecked()
    assert not win.canvas.confidence_item.isVisible()
    assert not panel.outline[Layer.LABELS].isChecked()
    assert not win.action("actionToggleOutline").isChecked()  # in step with the panel
    win.close()
