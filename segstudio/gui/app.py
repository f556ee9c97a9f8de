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


#: Debian/Ubuntu packages Qt's xcb platform plugin needs (also in the README).
XCB_PACKAGES = (
    "libegl1 libgl1 libfontconfig1 libfreetype6 libglib2.0-0 libdbus-1-3 libx11-xcb1 "
    "libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 "
    "libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-sync1 libxcb-xfixes0 libxcb-xkb1"
)


def display_problem(environ: dict[str, str] | None = None) -> str | None:
    """Why the window cannot open here (Linux), in words a user can act on; else None.

    Qt itself aborts with a long, unhelpful message in these cases.
    """
    env = os.environ if environ is None else environ
    if not sys.platform.startswith("linux") or env.get("QT_QPA_PLATFORM"):
        return None
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        return (
            "no display to open the window on (DISPLAY and WAYLAND_DISPLAY are unset); "
            "run it in a desktop session, or use the commands headless: segstudio --help"
        )
    if env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        from ctypes.util import find_library

        if find_library("xcb-cursor") is None:
            return f"Qt's X11 plugin needs system libraries: sudo apt-get install {XCB_PACKAGES}"
    return None


def run(folder: Path | None = None, argv: list[str] | None = None) -> int:
    """Open the main window (and ``folder`` as a project, once the window shows)."""
    problem = display_problem() if QApplication.instance() is None else None
    if problem is not None:
        print(f"segstudio: error: {problem}", file=sys.stderr)  # noqa: T201 - no window to tell
        return 2
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv[:1])
    app.setApplicationName("SegStudio")
    app.setApplicationVersion(__version__)
    app.setOrganizationName("SegStudio")
    from segstudio.gui.main_window import MainWindow
    from segstudio.session.models import warm_up_torch

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
            print(json.dumps(marks), file=sys.stderr, flush=True)  # noqa: T201 - the probe's output
            QTimer.singleShot(int(float(probe) * 1000), window.close)
        else:
            warm_up_torch()

    QTimer.singleShot(0, shown)
    return app.exec()
