"""Start the window: shown before torch is ever imported.

Also what the running app needs around the window: a log file, the theme
that follows the system, and an exception hook, so an error in a slot is
logged and shown to the user rather than lost on a terminal nobody reads.
Quitting waits for everything that writes; work that only reads (a huge
image's decode, the torch warm-up) is left behind, and the process ends at
once (:func:`end_now`).
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import platformdirs
from PySide6.QtCore import QObject, Qt, QThreadPool, QTimer, Signal
from PySide6.QtWidgets import QApplication, QMainWindow, QMessageBox, QWidget

from segstudio import __version__

log = logging.getLogger(__name__)

#: The hook's type (that of ``sys.excepthook``).
ExceptHook = Callable[[type[BaseException], BaseException, TracebackType | None], object]
#: How many distinct errors get a dialog; beyond that only the status bar and the log.
MAX_DIALOGS = 5

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


def log_path() -> Path:
    """The log file: in ``$SEGSTUDIO_CONFIG_DIR/logs`` when set, else the user log folder."""
    override = os.environ.get("SEGSTUDIO_CONFIG_DIR")
    if override:
        return Path(override).expanduser() / "logs" / "segstudio.log"
    return Path(platformdirs.user_log_dir("segstudio", appauthor=False)) / "segstudio.log"


def setup_logging() -> Path | None:
    """Warnings to stderr, and everything from INFO to a rotating log file; returns the
    file (None when it cannot be written: stderr only)."""
    root = logging.getLogger()
    if not root.handlers:
        err = logging.StreamHandler()
        err.setLevel(logging.WARNING)
        err.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(err)
    root.setLevel(min(root.level or logging.INFO, logging.INFO))
    path = log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=1_000_000, backupCount=3, encoding="utf-8"
        )
    except OSError as exc:
        log.warning("no log file (%s): messages go to stderr only", exc)
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    return path


class ErrorReporter(QObject):
    """``sys.excepthook`` for the window: an unhandled error (an exception raised in a
    slot or an action's handler) is logged with its traceback, said in the status bar,
    and shown once per distinct error in a non-modal message box with the details.

    Errors raised on another thread reach the window through a queued signal.
    """

    reported = Signal(str, str, str)  # (key, one line, traceback)

    def __init__(self, window: QMainWindow, log_file: Path | None = None) -> None:
        super().__init__(window)
        self.window, self.log_file = window, log_file
        self.seen: set[str] = set()
        self.boxes: list[QMessageBox] = []
        self.previous: ExceptHook | None = None
        self.previous_thread: Callable[[threading.ExceptHookArgs], object] | None = None
        self.reported.connect(self._show, Qt.ConnectionType.QueuedConnection)

    def install(self) -> None:
        """Become ``sys.excepthook`` and ``threading.excepthook`` (a Python thread's error)."""
        self.previous = sys.excepthook
        self.previous_thread = threading.excepthook
        sys.excepthook = self.hook
        threading.excepthook = self.thread_hook

    def uninstall(self) -> None:
        if sys.excepthook == self.hook and self.previous is not None:
            sys.excepthook = self.previous
        if threading.excepthook == self.thread_hook and self.previous_thread is not None:
            threading.excepthook = self.previous_thread
        self.previous = self.previous_thread = None

    def thread_hook(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_value is None or issubclass(args.exc_type, SystemExit):
            return
        self.hook(args.exc_type, args.exc_value, args.exc_traceback)

    def hook(self, kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt | SystemExit):  # not errors: the default says
            sys.__excepthook__(kind, exc, tb)
            return
        log.error("unhandled error", exc_info=(kind, exc, tb))
        frames = traceback.extract_tb(tb)
        where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else ""
        line = f"{kind.__name__}: {exc}".strip().rstrip(":")
        details = "".join(traceback.format_exception(kind, exc, tb))
        self.reported.emit(f"{kind.__qualname__}|{exc}|{where}", line, details)

    def _show(self, key: str, line: str, details: str) -> None:
        where = f" Details are in {self.log_file}." if self.log_file is not None else ""
        self.window.statusBar().showMessage(f"Unexpected error: {line}.{where}", 30000)
        if key in self.seen or len(self.seen) >= MAX_DIALOGS:
            return  # said once: the status bar and the log have the rest
        self.seen.add(key)
        box = QMessageBox(
            QMessageBox.Icon.Critical,
            "SegStudio: unexpected error",
            f"Something went wrong: {line}\n\nYour labels are saved as you go; you can "
            f"carry on, or save (Ctrl+S) and restart SegStudio.{where}",
            QMessageBox.StandardButton.Close,
            self.window,
        )
        box.setObjectName("errorBox")
        box.setDetailedText(details)
        box.setWindowModality(Qt.WindowModality.NonModal)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda _r, b=box: self._forget(b))
        self.boxes.append(box)
        box.show()

    def _forget(self, box: QWidget) -> None:
        if box in self.boxes:
            self.boxes.remove(box)


def install_excepthook(window: QMainWindow, log_file: Path | None = None) -> ErrorReporter:
    """Report unhandled errors in ``window`` (see :class:`ErrorReporter`); the app does
    this at start, a test that wants it installs it (and uninstalls it after)."""
    reporter = ErrorReporter(window, log_file)
    reporter.install()
    return reporter


def reads_left(image_reads: int, warm_up: threading.Thread | None) -> list[str] | None:
    """After the window closed (everything saved, the project closed): what still runs
    that only reads, which the process need not wait for; None when something else
    runs too (a job that would not stop: its end is waited for as always).

    ``image_reads`` is how many image loads the window abandoned (a huge file's decode);
    ``warm_up`` is the torch warm-up thread (:func:`~segstudio.session.models.warm_up_torch`).
    """
    if QThreadPool.globalInstance().activeThreadCount() > image_reads:
        return None
    main = threading.main_thread()
    others = [
        t
        for t in threading.enumerate()
        if t is not main and t is not warm_up and not isinstance(t, threading._DummyThread)
    ]
    if others:
        return None
    left = [f"{image_reads} image read(s)"] if image_reads else []
    if warm_up is not None and warm_up.is_alive():
        left.append("the torch warm-up")
    return left


def end_now(code: int, left: list[str]) -> None:
    """End the process at once, without Python's finalization, which would stop threads
    that are still inside OpenCV or torch code and make the C++ runtime abort (SIGABRT,
    "terminate called without an active exception"). Only for threads that only read:
    everything the app writes was saved and closed before."""
    log.info("quitting without waiting for %s", " and ".join(left))
    logging.shutdown()  # the log file is complete
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


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
    log_file = setup_logging()
    from segstudio.gui import theme
    from segstudio.gui.main_window import MainWindow
    from segstudio.gui.window_layout import fills_screen
    from segstudio.session.models import warm_up_torch

    theme.follow_system(app)
    window = MainWindow()
    reporter = install_excepthook(window, log_file)
    screen = window.screen()
    if screen is not None and fills_screen(window.geometry(), screen.availableGeometry()):
        window.showMaximized()  # a laptop screen: all of it, as the window manager allows
        QTimer.singleShot(0, window.size_docks)  # again, for the maximised size
    else:
        window.show()
    probe = os.environ.get(PROBE_ENV)
    marks: dict[str, float] = {}
    warm_up: list[threading.Thread] = []

    def shown() -> None:  # the first turn of the event loop: the window is on screen
        marks["window_shown"] = time.time()
        if folder is not None:
            if probe:  # the benchmark times the opening itself, never a question
                window.open_folder(folder)
            else:
                window.start_folder(folder)  # a new project asks for its classes first
            marks["folder_open"] = time.time()
        if probe:
            marks["torch_imported"] = float("torch" in sys.modules)
            print(json.dumps(marks), file=sys.stderr, flush=True)  # noqa: T201 - the probe's output
            QTimer.singleShot(int(float(probe) * 1000), window.close)
        else:
            warm_up.append(warm_up_torch())

    QTimer.singleShot(0, shown)
    try:
        code = app.exec()
    finally:
        reporter.uninstall()
    left = reads_left(window.editing.loaders.count, warm_up[0] if warm_up else None)
    if left:
        end_now(code, left)
    return code
