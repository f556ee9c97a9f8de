"""A huge image is predicted in tiles, with progress and cancel, and never holds up the others."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt

from segstudio.core.labelset import preset
from segstudio.gui.jobs import JobKind
from segstudio.io.project import Project
from segstudio.model.arch import ArchSpec
from segstudio.model.files import new_model, save_model
from segstudio.model.predictor import PredictionCancelled, Predictor
from tests.gui.conftest import make_images, open_window, show

REPO = Path(__file__).resolve().parents[2]
TINY = ArchSpec("segnet_basic", {"width": 0.125, "depth": 2})
#: A synthetic huge image: 6000 x 4500 (35 tiles of 1024).
BIG = (4500, 6000)
TILES = 35


def _big_rgb() -> np.ndarray:
    yy, xx = np.mgrid[0 : BIG[0], 0 : BIG[1]]
    return np.stack([xx // 50 % 256, yy // 40 % 256, (xx + yy) // 70 % 256], -1).astype(np.uint8)


@pytest.fixture(scope="module")
def big_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "big.png"
    Image.fromarray(_big_rgb()).save(path, compress_level=1)
    return path


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = save_model(tmp_path / "tiny.safetensors", new_model(TINY, preset("camvid11"), seed=0))
    monkeypatch.setenv("SEGSTUDIO_BUNDLED_MODEL", str(path))  # the project's default model
    return path


@pytest.fixture
def project(tmp_path: Path, big_png: Path) -> Path:
    """big.png (6000 x 4500) and two small images, CamVid classes."""
    folder = make_images(tmp_path / "scenes", n=2)
    (folder / "big.png").symlink_to(big_png)
    with Project.open(folder) as p:
        p.scan()
        p.set_labelset(preset("camvid11"))
    return folder


def test_the_predictor_reports_tiles_and_cancels_within_a_second() -> None:
    predictor = Predictor(new_model(TINY, preset("camvid11")), device="cpu")
    rgb = _big_rgb()
    assert predictor.tile_count(*BIG) == TILES
    reports: list[tuple[int, int]] = []
    cancel = threading.Event()
    asked: list[float] = []

    def progress(done: int, total: int) -> None:
        reports.append((done, total))
        if done == 2:  # two tiles done: the user cancels
            asked.append(time.monotonic())
            cancel.set()

    with pytest.raises(PredictionCancelled):
        predictor.predict(rgb, progress=progress, cancelled=cancel.is_set)
    assert time.monotonic() - asked[0] < 1.0
    assert reports == [(0, TILES), (1, TILES), (2, TILES)]  # no tile after the cancel
    # a small image is one tile, and the predictor is usable again
    small: list[tuple[int, int]] = []
    pred = predictor.predict(rgb[:200, :300], progress=lambda d, t: small.append((d, t)))
    assert small == [(0, 1), (1, 1)] and pred.labels.shape == (200, 300)


def test_leaving_a_huge_image_stops_its_prediction_and_the_next_image_goes_first(
    qtbot, project: Path, tiny: Path
) -> None:
    win = open_window(qtbot, project)
    assert win.doc.name == "big.png"
    auto = win.prediction.automatic
    # its tiles are counted in the status bar
    qtbot.waitUntil(lambda: auto.progress.isVisible() and auto.progress.value() >= 1, timeout=60000)
    assert auto.progress.maximum() == TILES
    assert "Predicting big.png" in auto.progress.format()
    assert auto.stop_button.isVisible()
    show(qtbot, win, "img0.png")  # the user moves on
    qtbot.waitUntil(lambda: win.doc.prediction is not None, timeout=60_000)
    qtbot.waitUntil(lambda: not auto.busy, timeout=10_000)
    assert not win.project.record("big.png").has_prediction  # stopped, nothing stored
    assert not auto.progress.isVisible() and not auto.stop_button.isVisible()
    win.close()


def test_stop_ends_the_automatic_prediction_and_it_is_not_restarted(
    qtbot, project: Path, tiny: Path
) -> None:
    win = open_window(qtbot, project)
    auto = win.prediction.automatic
    qtbot.waitUntil(lambda: auto.stop_button.isVisible(), timeout=60_000)
    qtbot.mouseClick(auto.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not auto.busy, timeout=10_000)
    assert "Stopped predicting big.png" in win.statusBar().currentMessage()
    assert not win.project.record("big.png").has_prediction
    show(qtbot, win, "img0.png")
    qtbot.waitUntil(lambda: win.doc.prediction is not None, timeout=60_000)
    qtbot.waitUntil(lambda: not auto.busy, timeout=10_000)
    show(qtbot, win, "big.png")  # back: not predicted again by itself
    assert not auto.busy
    win.close()


def test_predict_shows_tiles_and_cancel_stops_it(qtbot, project: Path, tiny: Path) -> None:
    win = open_window(qtbot, project)
    win.action("actionAutoPredict").setChecked(False)  # switched off: it stops at once
    qtbot.waitUntil(lambda: not win.prediction.auto.busy, timeout=10_000)
    assert not win.project.record("big.png").has_prediction
    win.action("actionPredictImage").trigger()
    assert win.jobs.kind is JobKind.PREDICT
    bar = win.jobs.progress
    qtbot.waitUntil(lambda: "tile" in bar.format() and bar.value() >= 1, timeout=60_000)
    assert bar.maximum() == TILES and bar.format().startswith("Predict big.png: tile ")
    qtbot.mouseClick(win.jobs.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not win.jobs.running, timeout=10_000)
    assert win.statusBar().currentMessage() == "Predict cancelled"
    assert win.doc.prediction is None and not win.project.record("big.png").has_prediction
    win.close()


def test_a_small_image_is_predicted_while_predict_runs_on_a_huge_one(
    qtbot, project: Path, tiny: Path
) -> None:
    win = open_window(qtbot, project)
    win.prediction.automatic.stop()
    qtbot.waitUntil(lambda: not win.prediction.auto.busy, timeout=10_000)
    win.action("actionPredictImage").trigger()  # the huge image, as a job
    bar = win.jobs.progress
    qtbot.waitUntil(lambda: "tile" in bar.format(), timeout=60_000)
    show(qtbot, win, "img1.png")  # predicted automatically: the two take turns by tile
    qtbot.waitUntil(lambda: win.doc.prediction is not None, timeout=60_000)
    assert win.jobs.kind is JobKind.PREDICT  # while the huge one is still under way
    win.jobs.cancel()
    qtbot.waitUntil(lambda: not win.jobs.running, timeout=10_000)
    win.close()


def test_quitting_during_a_huge_prediction_and_predict_all_ends_at_once(
    qtbot, project: Path, tiny: Path
) -> None:
    win = open_window(qtbot, project)
    auto = win.prediction.automatic
    qtbot.waitUntil(lambda: auto.progress.value() >= 1, timeout=60_000)
    win.close()  # the automatic prediction of big.png is stopped, nothing waits for it
    assert not win.isVisible() and not auto.busy
    win = open_window(qtbot, project)
    win.prediction.automatic.stop()
    win.action("actionPredictAll").trigger()
    bar = win.jobs.progress
    qtbot.waitUntil(lambda: "tile" in bar.format(), timeout=60_000)
    win.close()
    assert not win.isVisible() and not win.jobs.running


def test_a_cancelled_predict_all_says_cancelled(qtbot, project: Path, tiny: Path) -> None:
    win = open_window(qtbot, project)
    win.prediction.automatic.stop()
    win.action("actionPredictAll").trigger()
    bar = win.jobs.progress
    qtbot.waitUntil(lambda: "tile" in bar.format(), timeout=60_000)
    assert bar.format().startswith("Predict all 0/3 · tile ")
    qtbot.mouseClick(win.jobs.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not win.jobs.running, timeout=10_000)
    assert win.statusBar().currentMessage() == "Predict all cancelled"
    assert not win.project.record("big.png").has_prediction
    win.close()


def test_a_huge_image_shows_progress_at_once_and_leaving_it_never_waits_for_it(
    qtbot, project: Path, tiny: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A huge image's first tile takes a while: the bar and Stop show from the start, the
    prediction reuses the pixels the window has loaded (the file is not decoded again),
    and the image shown next is predicted while the huge one's worker is still held up."""
    import segstudio.session.models as models

    gate, started = threading.Event(), threading.Event()
    real_predict = models.ModelService.predict
    files: list[str] = []
    real_read = models.read_image

    def slow_predict(self, rgb: np.ndarray, *args, **kwargs):  # big.png's, held by the test
        if max(rgb.shape[:2]) > 1024:
            started.set()
            gate.wait(30)
        return real_predict(self, rgb, *args, **kwargs)

    def read(path: Path):
        files.append(Path(path).name)
        return real_read(path)

    monkeypatch.setattr(models.ModelService, "predict", slow_predict)
    monkeypatch.setattr(models, "read_image", read)
    win = open_window(qtbot, project)
    auto = win.prediction.automatic
    assert win.doc.name == "big.png"
    qtbot.waitUntil(started.is_set, timeout=10_000)
    assert auto.progress.isVisible() and auto.stop_button.isVisible()  # before any tile
    assert auto.progress.format() == "Predicting big.png: starting…"
    show(qtbot, win, "img0.png")  # the user moves on while big.png is still held up
    assert not auto.progress.isVisible() and not auto.stop_button.isVisible()
    qtbot.waitUntil(lambda: win.doc.prediction is not None, timeout=60_000)
    assert not gate.is_set() and auto.busy  # big.png's worker still waits
    gate.set()
    qtbot.waitUntil(lambda: not auto.busy, timeout=30_000)
    assert not win.project.record("big.png").has_prediction  # stopped, nothing stored
    assert win.project.record("img0.png").has_prediction
    assert files == []  # neither image was read a second time
    win.close()


def test_closing_while_an_image_file_is_read_does_not_wait_for_the_read(
    qtbot, folder: Path, tiny: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading an image only reads: closing drops a load whose file is still being decoded
    (a huge JPEG takes seconds) instead of waiting for it, and its result is ignored."""
    import segstudio.session.document as document
    import segstudio.session.loading as loading

    reading, release, read = threading.Event(), threading.Event(), threading.Event()
    real_read = loading.read_image

    def slow_read(path: Path):  # img1.png decodes for 3 s, unless the test lets go sooner
        if Path(path).name != "img1.png":
            return real_read(path)
        reading.set()
        release.wait(3)
        try:
            return real_read(path)
        finally:
            read.set()

    for module in (document, loading):
        monkeypatch.setattr(module, "read_image", slow_read)
    win = open_window(qtbot, folder)
    win.images.select("img1.png")
    qtbot.waitUntil(reading.is_set, timeout=10_000)
    win.close()
    assert not read.is_set()  # closed while the file was still being read
    assert win.project is None and win.doc is None
    release.set()
    qtbot.waitUntil(lambda: not win.editing.loaders.busy, timeout=10_000)
    assert win.doc is None  # the late result was dropped


@pytest.mark.skipif(sys.platform == "win32", reason="the abort is the C++ runtime's on POSIX")
def test_quitting_during_a_read_ends_the_process_at_once_and_cleanly(
    tmp_path: Path, isolated_config: Path
) -> None:
    """The app quits while an image file is still being decoded in OpenCV (and torch may
    still be warming up): the process ends at once, without waiting for the read, and
    without the C++ runtime's abort that Python's finalization of those threads causes."""
    folder = tmp_path / "photos"
    folder.mkdir()
    yy, xx = np.mgrid[0:1500, 0:2000]
    rgb = np.stack([xx % 256, yy % 256, (xx + yy) % 256], -1).astype(np.uint8)
    Image.fromarray(rgb).save(folder / "a.jpg", quality=90)
    with Project.open(folder) as p:
        p.scan()
        p.set_labelset(preset("camvid11"))
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "SEGSTUDIO_CONFIG_DIR": str(isolated_config),
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, str(REPO / "tests" / "gui" / "quit_driver.py"), str(folder)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "terminate" not in done.stderr, done.stderr
    log = (isolated_config / "logs" / "segstudio.log").read_text()
    assert "quitting without waiting for 1 image read(s)" in log
