"""Run by test_crash.py in a child process: open a project and paint until killed.

``crash_driver.py FOLDER LOG [dots|stroke]``. In ``dots`` mode (the default)
each finished dot is logged as ``index class time``; in ``stroke`` mode the
mouse is pressed once and dragged along rows without ever being released, and
each point reached is logged as ``x y time`` (the stroke paints class
:data:`STROKE_CLASS`). Lines are flushed and fsynced, so the test can tell what
was painted how long before the kill. ``stroke`` mode shortens the autosave
intervals to :data:`STROKE_AUTOSAVE_MS` so the test stays short.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from segstudio.gui import editing
from segstudio.gui.main_window import MainWindow
from tests.gui.conftest import drag, view_pos

GRID = 12  # dots every 12 pixels
STROKE_CLASS = 3
STROKE_STEP = 4  # pixels between the points of the stroke
#: (idle, max) autosave intervals of stroke mode, in ms
STROKE_AUTOSAVE_MS = (500, 1000)


def stroke_points(width: int, height: int) -> list[tuple[int, int]]:
    """The path of the endless stroke: left to right along rows ``GRID`` apart."""
    return [
        (x, y)
        for y in range(GRID, height - GRID, GRID)
        for x in range(GRID, width - GRID, STROKE_STEP)
    ]


def dot_position(k: int, width: int) -> tuple[int, int]:
    per_row = (width - GRID) // GRID
    return GRID + (k % per_row) * GRID, GRID + (k // per_row) * GRID


def paint_one_stroke(app: QApplication, win: MainWindow, log_path: Path) -> None:
    """Press, then drag slowly along :func:`stroke_points` and never let go."""
    win.palette.choose(STROKE_CLASS)
    h, w = win.doc.labels.shape
    points = stroke_points(w, h)
    vp = win.canvas.viewport()
    left, none = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    QTest.mousePress(vp, left, none, view_pos(win, *points[0]))
    with open(log_path, "a", buffering=1) as log:
        for x, y in points:
            QTest.mouseMove(vp, view_pos(win, x, y))
            app.processEvents()
            log.write(f"{x} {y} {time.time():.3f}\n")
            log.flush()
            os.fsync(log.fileno())
            deadline = time.monotonic() + 0.02
            while time.monotonic() < deadline:  # the event loop (and autosave) runs on
                app.processEvents()
                time.sleep(0.005)
    while True:  # the end of the path: hold the button until killed
        app.processEvents()
        time.sleep(0.01)


def main() -> None:
    folder, log_path = Path(sys.argv[1]), Path(sys.argv[2])
    mode = sys.argv[3] if len(sys.argv) > 3 else "dots"
    if mode == "stroke":
        editing.AUTOSAVE_IDLE_MS, editing.AUTOSAVE_MAX_MS = STROKE_AUTOSAVE_MS
    app = QApplication([])
    win = MainWindow()
    win.resize(1000, 700)
    win.show()
    assert win.open_folder(folder)
    while win.doc is None:
        app.processEvents()
    win.canvas.set_brush_radius(2)
    if mode == "stroke":
        paint_one_stroke(app, win, log_path)
        return
    width = win.doc.labels.shape[1]
    with open(log_path, "a", buffering=1) as log:
        k = 0
        while True:
            cls = k % 11
            win.palette.choose(cls)
            x, y = dot_position(k, width)
            drag(win, [(x, y), (x + 1, y)])
            log.write(f"{k} {cls} {time.time():.3f}\n")
            log.flush()
            os.fsync(log.fileno())
            k += 1
            deadline = time.monotonic() + 0.05
            while time.monotonic() < deadline:  # a user's pace, with the event loop running
                app.processEvents()
                time.sleep(0.005)


if __name__ == "__main__":
    main()
