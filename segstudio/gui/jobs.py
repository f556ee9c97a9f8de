"""Work off the GUI thread: the one long job at a time, and the small side workers.

:class:`JobRunner` runs the long jobs the user starts (predict, predict all,
fine-tune, export, import), one at a time, in a superqt worker. It owns the
status bar's progress bar and Cancel button, shows a failure in a dialog, and
says which job runs by its :class:`JobKind`. :class:`WorkerSet` keeps the side
workers (image loads, the automatic prediction, GrabCut, a class migration)
referenced while they run. Both can be waited for without a busy loop: a local
event loop ends when the worker's ``finished`` signal says so, or at a timeout
(:func:`wait_for`).
"""

from __future__ import annotations

import errno
import logging
import threading
from collections.abc import Callable
from enum import Enum
from typing import Any

from PySide6.QtCore import QEventLoop, QObject, QTimer, Signal, SignalInstance
from PySide6.QtWidgets import QMessageBox, QProgressBar, QPushButton, QStatusBar, QWidget
from superqt.utils import GeneratorWorker, create_worker

from segstudio.core.errors import SegStudioError
from segstudio.core.jobs import Progress

log = logging.getLogger(__name__)


class JobKind(Enum):
    """The long jobs; the value is how the user sees the job named."""

    PREDICT = "Predict"
    PREDICT_ALL = "Predict all"
    FINE_TUNE = "Fine-tune"
    EXPORT = "Export"
    IMPORT = "Import"


#: A file system error in words: what is wrong with the path, and what to do.
OS_ERRORS: tuple[tuple[type[OSError], str, str], ...] = (
    (FileExistsError, "there is already a file or folder at {path}", "Choose another place"),
    (PermissionError, "no permission to use {path}", "Choose a place you may write to"),
    (FileNotFoundError, "{path} does not exist", "Check the path"),
    (NotADirectoryError, "part of {path} is a file, not a folder", "Choose a folder"),
    (IsADirectoryError, "{path} is a folder, not a file", "Choose a file"),
)


def error_text(exc: BaseException) -> str:
    """A worker's error for the user: our own errors say what to do (in the window's words
    where they have some), file system errors say so in a sentence, others name their type."""
    if isinstance(exc, SegStudioError):
        return exc.window or str(exc)
    if isinstance(exc, OSError) and exc.filename is not None:
        return os_error_text(exc)
    return f"{type(exc).__name__}: {exc}"


def os_error_text(exc: OSError) -> str:
    """``exc`` as a sentence: what is wrong, the path, what to do."""
    path = str(exc.filename)
    if exc.errno == errno.ENOSPC:
        return f"the disk is full (writing {path}). Free some space, or choose another disk."
    for kind, what, todo in OS_ERRORS:
        if isinstance(exc, kind):
            return f"{what.format(path=path)}. {todo}, and try again."
    return f"{exc.strerror or exc} ({path}). Check the path, and try again."


def wait_for(signal: SignalInstance, done: Callable[[], bool], timeout_s: float) -> bool:
    """Run the event loop until ``done()`` holds (checked whenever ``signal`` fires) or
    ``timeout_s`` has passed; returns ``done()``.

    Events go on being handled meanwhile, so a worker's queued signals arrive;
    user input waits until the loop ends (no click starts something new meanwhile).
    """
    if done():
        return True
    loop = QEventLoop()
    timer = QTimer()
    timer.setSingleShot(True)
    timer.timeout.connect(loop.quit)

    def check(*_args: object) -> None:
        if done():
            loop.quit()

    signal.connect(check)
    timer.start(max(0, int(timeout_s * 1000)))
    try:
        loop.exec(QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents)
    finally:
        timer.stop()
        signal.disconnect(check)
    return done()


def progress_bar(name: str, widest: str) -> QProgressBar:
    """A status-bar progress bar wide enough for ``widest`` (its longest text)."""
    bar = QProgressBar()
    bar.setObjectName(name)
    bar.setFixedWidth(bar.fontMetrics().horizontalAdvance(widest) + 24)
    bar.setVisible(False)
    return bar


def _worker(func: Callable[..., Any], *args: Any) -> Any:
    return create_worker(func, *args, _start_thread=False, _ignore_errors=True)


class WorkerSet(QObject):
    """Side workers, referenced until they end; ``finished`` after each one ends."""

    finished = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._running: set[Any] = set()

    @property
    def busy(self) -> bool:
        return bool(self._running)

    @property
    def count(self) -> int:
        """How many of its workers run."""
        return len(self._running)

    def start(
        self,
        func: Callable[..., Any],
        *args: Any,
        returned: Callable[[Any], None] | None = None,
        errored: Callable[[BaseException], None] | None = None,
        finished: Callable[[], None] | None = None,
    ) -> Any:
        """Run ``func(*args)`` in a worker; the callbacks run on the GUI thread."""
        worker = _worker(func, *args)
        if returned is not None:
            worker.returned.connect(returned)
        if errored is not None:
            worker.errored.connect(errored)
        worker.finished.connect(lambda w=worker: self._ended(w, finished))
        self._running.add(worker)
        worker.start()
        return worker

    def _ended(self, worker: Any, finished: Callable[[], None] | None) -> None:
        self._running.discard(worker)
        if finished is not None:
            finished()  # may start the next worker
        self.finished.emit()

    def wait(self, timeout_s: float) -> bool:
        """Let every running worker end (at most ``timeout_s``); False if some still run."""
        return wait_for(self.finished, lambda: not self._running, timeout_s)


class JobRunner(QObject):
    """One long job at a time, with progress, cancel and errors routed to the window.

    Signals
    -------
    started(kind), finished(kind)
        A job started; a job ended (returned, failed or cancelled).
    """

    started = Signal(object)
    finished = Signal(object)

    def __init__(self, window: QWidget, status: QStatusBar) -> None:
        super().__init__(window)
        self._window = window
        self._status = status
        self.progress = progress_bar("jobProgress", "Predict all 9999/9999 · tile 999/999")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("jobCancel")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel)
        status.addPermanentWidget(self.progress)
        status.addPermanentWidget(self.cancel_button)
        self._worker: Any = None
        self._kind: JobKind | None = None
        self._cancel: threading.Event | None = None
        self._then: Callable[[], None] | None = None
        self._outcome = ""  # how the running job ended: "" (finished), "cancelled", "failed"
        self._said: str | None = None  # the status line when the job returned
        self._error = ""  # what the box said when the running job failed
        #: Set when the app quits: a cancelled fine-tune keeps its checkpoint to resume.
        self.keep = threading.Event()
        self._closing = False  # the project closes: a result or an error is only logged

    @property
    def running(self) -> bool:
        return self._worker is not None

    @property
    def kind(self) -> JobKind | None:
        """The running job's kind; None when none runs."""
        return self._kind

    def start(
        self,
        kind: JobKind,
        func: Callable[..., Any],
        *args: Any,
        on_report: Callable[[Any], None] | None = None,
        on_return: Callable[[Any], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> bool:
        """Run ``func(*args)`` (a function, or a generator of reports) in a worker.

        A :class:`~segstudio.core.jobs.Progress` report moves the progress bar
        by itself; every report also goes to ``on_report``. ``cancel`` is the
        event the job polls (None: Cancel quits the worker at its next yield).
        False (and a status message) when another job is running.
        """
        if self._kind is not None:
            self._status.showMessage(f"{self._kind.value} is still running", 5000)
            return False
        worker = _worker(func, *args)
        worker.errored.connect(self._failed)
        worker.finished.connect(self._ended)
        if isinstance(worker, GeneratorWorker):
            worker.yielded.connect(lambda report, f=on_report: self._report(report, f))
        # what the status bar said before the job's own words on its result, if any
        worker.returned.connect(lambda _r: setattr(self, "_said", self._status.currentMessage()))
        if on_return is not None:
            worker.returned.connect(lambda result, f=on_return: self._returned(result, f))
        self._said = None
        self._worker, self._kind, self._cancel = worker, kind, cancel
        self._outcome = ""
        self.progress.setRange(0, 0)
        self.progress.setFormat(f"{kind.value} %v/%m")
        self.progress.setVisible(True)
        self.cancel_button.setVisible(True)
        self.started.emit(kind)
        worker.start()
        return True

    def then(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` once the running job has ended (it may start the next job);
        cancelling drops it."""
        self._then = hook

    def show_progress(self, done: int, total: int | None, text: str | None = None) -> None:
        """``done`` of ``total`` (None: unknown, the bar stays as it is), and its text."""
        if total is not None:
            self.progress.setRange(0, max(total, 1))
            self.progress.setValue(done)
        if text is not None:
            self.progress.setFormat(text)

    def cancel(self) -> None:
        """Ask the running job to stop: at its next step (its cancel event), or its next yield."""
        worker = self._worker
        if worker is None:
            return
        self._then = None
        self._outcome = self._outcome or "cancelled"
        if self._cancel is not None:
            # the job returns at its next step, closing its generator in its own thread
            self._cancel.set()
        else:
            worker.quit()

    @property
    def cancelled(self) -> bool:
        """Whether the running job (or the one that just ended) was asked to stop."""
        return self._outcome == "cancelled"

    @property
    def failed(self) -> bool:
        """Whether the running job (or the one that just ended) failed with an error."""
        return self._outcome == "failed"

    def wait(self, timeout_s: float) -> bool:
        """Let the running job end (it reports back first); False if it still runs."""
        return wait_for(self.finished, lambda: self._worker is None, timeout_s)

    def close(self, timeout_s: float) -> bool:
        """The project closes (or the app quits): cancel the running job and wait for it
        (at most ``timeout_s``). A job that ends anyway (an import past its point of no
        return) is logged, not shown: no dialog holds up the closing. False if the job
        still runs."""
        if self._worker is None:
            return True
        self._closing = True  # until the job has ended, however long that takes
        self.cancel()
        return self.wait(timeout_s)

    def _returned(self, result: Any, on_return: Callable[[Any], None]) -> None:
        if self._closing:
            kind = self._kind.value if self._kind is not None else "A job"
            log.info("%s ended while closing: %r", kind, result)
            return
        on_return(result)

    def _report(self, report: Any, on_report: Callable[[Any], None] | None) -> None:
        if isinstance(report, Progress):
            self.show_progress(report.done, report.total)
        if on_report is not None:
            on_report(report)

    def _failed(self, exc: BaseException) -> None:
        title = self._kind.value if self._kind is not None else "Model"
        msg = error_text(exc)
        if self._outcome == "cancelled" or self._closing:  # stopped as asked, on its way out
            log.info("%s cancelled: %s", title, msg)
            return
        self._outcome = "failed"
        self._error = f"{title} failed: {msg}"  # the box and the status bar say the same
        log.error("%s", self._error)
        QMessageBox.warning(self._window, title, self._error)

    def _ended(self) -> None:
        kind = self._kind
        assert kind is not None
        said = self._said
        if self._outcome == "failed":
            self._status.showMessage(self._error, 15000)
        elif said is None or self._status.currentMessage() == said:  # the job said nothing
            self._status.showMessage(f"{kind.value} {self._outcome or 'finished'}", 5000)
        self._worker, self._kind, self._cancel = None, None, None
        self._closing = False
        self.progress.setVisible(False)
        self.cancel_button.setVisible(False)
        self.finished.emit(kind)
        hook, self._then = self._then, None
        if hook is not None:  # last: it may start the next job
            hook()
