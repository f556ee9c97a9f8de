"""GUI fixtures: a small project folder, an isolated config folder, the window, and a
check that no worker thread outlives the window."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, Qt, QThreadPool
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget

from segstudio.gui.main_window import MainWindow

#: How long a worker may take to end after its window closed.
THREAD_GRACE_MS = 5_000


def _new_threads(before: set[int | None]) -> list[threading.Thread]:
    """Python threads started since ``before`` and still running. Qt's pool threads show
    up as dummy threads for as long as the process lives: they are counted by
    ``QThreadPool.activeThreadCount`` instead."""
    return [
        t
        for t in threading.enumerate()
        if t.ident not in before and t.is_alive() and not isinstance(t, threading._DummyThread)
    ]


def top_level_widgets() -> list[QWidget]:
    """``QApplication.topLevelWidgets()`` without a garbage collection in the middle.

    The call turns a C++ list of widget pointers into Python objects. A collection that
    runs during it (any allocation can start one) may free a parentless widget that a
    closed window's leftovers kept alive, and the list then points at freed memory: a
    segfault. So collect first, then take the list with the collector off."""
    gc.collect()
    gc.disable()
    try:
        return QApplication.topLevelWidgets()
    finally:
        gc.enable()


@pytest.fixture(autouse=True)
def no_worker_left_running(qtbot) -> Iterator[None]:
    """Fail a test that leaves a worker running once its windows are closed: a Python
    thread it started (the saver's is shut down at close) or a superqt worker in Qt's
    global thread pool. Windows the test left open are closed first, as a user would."""
    before = {t.ident for t in threading.enumerate()}
    yield
    for widget in top_level_widgets():
        if isinstance(widget, MainWindow) and widget.isVisible():
            widget.close()
    pool = QThreadPool.globalInstance()

    def settled() -> bool:
        return not _new_threads(before) and pool.activeThreadCount() == 0

    try:
        qtbot.waitUntil(settled, timeout=THREAD_GRACE_MS)
    except qtbot.TimeoutError:
        names = [t.name for t in _new_threads(before)]
        pytest.fail(
            f"workers still running after the window closed: threads {names}, "
            f"{pool.activeThreadCount()} in Qt's global pool"
        )


@pytest.fixture(autouse=True)
def isolated_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    config = tmp_path / "config"
    monkeypatch.setenv("SEGSTUDIO_CONFIG_DIR", str(config))
    return config


def make_images(folder: Path, n: int = 3, size: tuple[int, int] = (90, 120)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    h, w = size
    for i in range(n):
        img = np.zeros((h, w, 3), np.uint8)
        img[: h // 2] = (120, 160, 230)  # "sky"
        img[h // 2 :] = (90, 90, 90)  # "road"
        img[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3] = (220, 40, 40)  # an object
        img = np.clip(img + rng.integers(0, 20, img.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"img{i}.png")
    return folder


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return make_images(tmp_path / "project")


def open_window(qtbot, folder: Path, size: tuple[int, int] = (1000, 700)) -> MainWindow:
    """A shown window of ``size`` with ``folder`` open and its first image loaded."""
    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(*size)
    win.show()
    qtbot.waitExposed(win)
    assert win.open_folder(folder)
    qtbot.waitUntil(lambda: win.doc is not None)
    return win


@pytest.fixture
def window(qtbot, folder: Path) -> Iterator[MainWindow]:
    win = open_window(qtbot, folder)
    yield win
    win.close()


def show(qtbot, win: MainWindow, name: str) -> None:
    """Pick ``name`` in the image list and wait until it is open (images load in a worker)."""
    win.images.select(name)
    qtbot.waitUntil(lambda: win.doc is not None and win.doc.name == name, timeout=10_000)


def view_pos(win: MainWindow, x: float, y: float) -> QPoint:
    """The viewport position of image pixel (x, y)'s centre."""
    return win.canvas.mapFromScene(QPointF(x + 0.5, y + 0.5))


def drag(win: MainWindow, points: list[tuple[float, float]]) -> None:
    """A real left-button drag through image points on the canvas."""
    vp = win.canvas.viewport()
    QTest.mousePress(
        vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, view_pos(win, *points[0])
    )
    for p in points[1:]:
        QTest.mouseMove(vp, view_pos(win, *p))
    QTest.mouseRelease(
        vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, view_pos(win, *points[-1])
    )


def click(win: MainWindow, x: float, y: float) -> None:
    QTest.mouseClick(
        win.canvas.viewport(),
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
        view_pos(win, x, y),
    )
