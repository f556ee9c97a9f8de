"""Start the window: shown before torch is ever imported."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from segstudio import __version__

log = logging.getLogger(__name__)

#: Set to a number of seconds to print start-up timings as JSON on stderr and
#: quit that long after the folder opened (used by benchmarks/bench_startup.py).
PROBE_ENV = "SEGSTUDIO_STARTUP_PROBE"


def run(folder: Path | None = None, argv: list[str] | None = None) -> int:
    """Open the main window (and ``folder`` as a project, once the window shows)."""
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv[:1])
    app.setApplicationName("SegStudio")
    app.setApplicationVersion(__version__)
    app.setOrganizationName("SegStudio")
    from segstudio.gui.main_window import MainWindow
    from segstudio.gui.workers import warm_up_torch

    window = MainWindow()
    window.show()
    probe = os.environ.get(PROBE_ENV)
    marks: dict[str, float] = {}

    def shown() -> None:  # the first turn of the event loop: the window is on screen
        marks["window_shown"] = time.time()
        if folder is not None:
            window.open_folder(folder)
            marks["folder_open"] = time.time()
        if probe:
            marks["torch_imported"] = float("torch" in sys.modules)
            print(json.dumps(marks), file=sys.stderr, flush=True)
            QTimer.singleShot(int(float(probe) * 1000), window.close)
        else:
            warm_up_torch()

    QTimer.singleShot(0, shown)
    return app.exec()
