"""Run by test_crash.py in a child process: open a project and paint dots until killed.

Each finished dot is logged as ``index class time`` (flushed and fsynced), so
the test can tell which dots were painted how long before the kill.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtWidgets import QApplication

from segstudio.gui.main_window import MainWindow
from tests.gui.conftest import drag

GRID = 12  # dots every 12 pixels


def dot_position(k: int, width: int) -> tuple[int, int]:
    per_row = (width - GRID) // GRID
    return GRID + (k % per_row) * GRID, GRID + (k // per_row) * GRID


def main() -> None:
    folder, log_path = Path(sys.argv[1]), Path(sys.argv[2])
    app = QApplication([])
    win = MainWindow()
    win.resize(1000, 700)
    win.show()
    assert win.open_folder(folder)
    while win.doc is None:
        app.processEvents()
    win.canvas.set_brush_radius(2)
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
