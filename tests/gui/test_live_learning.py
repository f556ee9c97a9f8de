"""Learn as I paint: strokes on one image teach the live learner, which predicts the next."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

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
