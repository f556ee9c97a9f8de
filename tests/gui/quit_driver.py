"""Run by test_big_image.py in a child process: the app (``gui.app.run``) on a project,
closed as soon as the file of its first image is being read, a read that goes on inside
OpenCV for seconds (a huge JPEG's decode).

``quit_driver.py FOLDER``; the exit status is the app's.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

import segstudio.session.document as document
import segstudio.session.loading as loading
from segstudio.gui.app import run
from segstudio.gui.main_window import MainWindow

#: Reads of the file in a row: together they take seconds.
READS = 60

reading = threading.Event()
real_read = loading.read_image


def long_read(path: Path):
    reading.set()
    for _ in range(READS):
        image = real_read(path)
    return image


def close_when_reading() -> None:
    if not reading.is_set():
        QTimer.singleShot(10, close_when_reading)
        return
    for widget in QApplication.topLevelWidgets():
        if isinstance(widget, MainWindow):
            widget.close()


if __name__ == "__main__":
    loading.read_image = document.read_image = long_read  # whichever opens the image
    app = QApplication(sys.argv[:1])
    QTimer.singleShot(0, close_when_reading)
    sys.exit(run(Path(sys.argv[1])))
