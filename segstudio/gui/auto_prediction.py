"""The automatic prediction of the image on screen, beside the jobs.

The image just shown is predicted in a worker of its own, so nothing the
user starts waits for it; it predicts the pixels already on screen (a huge
file is never decoded a second time). A big image is predicted in tiles: a
progress bar in the status bar says how many are done and Stop ends it
within one layer of the network. Leaving an image stops its automatic
prediction, so the image shown next never waits behind a huge one; the
predictor lets a job and this worker take turns tile by tile (see
:mod:`segstudio.model.predictor`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QPushButton

from segstudio.gui.editing import EditingController
from segstudio.gui.jobs import JobKind, JobRunner, WorkerSet, error_text, progress_bar
from segstudio.gui.ui import Ui
from segstudio.io.project import ImageStatus
from segstudio.session.models import ModelService, predict_one

log = logging.getLogger(__name__)

#: How long closing waits for the automatic prediction (cancelled: it ends within a layer).
AUTO_WAIT_S = 30.0
#: An image with a side longer than this (the predictor's tile) is stopped when the user
#: leaves it; a smaller one is done within a moment, and kept.
BIG_SIDE = 1024


def unfit_text(model: str, why: str) -> str:
    """The status line for an active model whose classes are not the project's."""
    return (
        f"Automatic prediction stopped: {model} does not fit the classes ({why}); "
        "choose another model (Ctrl+Shift+M) or fine-tune (Ctrl+T)"
    )


def short_name(name: str, most: int = 24) -> str:
    """``name``, cut to ``most`` characters for the status bar."""
    return name if len(name) <= most else name[: most - 1] + "…"


class TileRelay(QObject):
    """Carries tile progress from a prediction's thread to the window's (a queued signal)."""

    tile = Signal(str, str, int, int)  # who ("auto" or "job"), image, done, total

    def reporter(self, who: str, name: str) -> Callable[[int, int], None]:
        """A prediction's ``progress(done, total)`` callback (called in its own thread)."""
        return lambda done, total: self.tile.emit(who, name, done, total)


class AutoPrediction(QObject):
    """Predicts the shown image when it has none; at most one runs.

    Signals
    -------
    predicted(tuple)
        ``(name, labels, confidence)``, stored in the project already.
    """

    predicted = Signal(object)

    def __init__(
        self, ui: Ui, jobs: JobRunner, editing: EditingController, service: ModelService
    ) -> None:
        super().__init__(ui.window)
        self.ui, self.jobs, self.editing, self.service = ui, jobs, editing, service
        self.workers = WorkerSet(self)
        self.again = False  # another image was shown meanwhile
        self.name: str | None = None  # the image being predicted
        self._cancel = threading.Event()
        self.stopped: set[str] = set()  # images whose prediction the user stopped
        self.failed: Path | None = None  # the model it failed with: no more tries
        #: Why the active model does not fit the project's classes (None: it fits).
        self.unfit: str | None = None
        self._big = False  # the image being predicted is bigger than one tile
        self.relay = TileRelay(self)
        self.relay.tile.connect(self._tile)
        self.progress = progress_bar("autoProgress", "Predicting a-long-image-name.png: 999/999")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setObjectName("autoPredictStop")
        self.stop_button.setToolTip("Stop predicting this image (Model → Predict this image)")
        self.stop_button.setVisible(False)
        self.stop_button.clicked.connect(self.stop)
        ui.status.addPermanentWidget(self.progress)
        ui.status.addPermanentWidget(self.stop_button)
        # switched off: the prediction under way stops too
        ui.action("actionAutoPredict").toggled.connect(lambda on: on or self.cancel())

    @property
    def busy(self) -> bool:
        """Whether a prediction runs (or a stopped one is still winding down)."""
        return self.workers.busy

    @property
    def _running(self) -> bool:
        """Whether the current prediction runs (one that was stopped does not count)."""
        return self.name is not None and not self._cancel.is_set()

    def _drop(self) -> None:
        """Stop the current prediction and forget it at once: its worker ends by itself
        (a huge image may still be read for seconds), the next image need not wait."""
        self._cancel.set()
        self.name, self._big = None, False
        self.progress.setVisible(False)
        self.stop_button.setVisible(False)

    def reset(self) -> None:
        """Another model (or project): try every image again."""
        self.failed = None
        self.stopped.clear()

    def leave(self, shown: str) -> None:
        """``shown`` is on screen now: stop predicting another image when it is big (a
        small one ends within a moment; ``shown`` is taken up next either way)."""
        if self._running and self.name != shown:
            if self._big:
                self._drop()  # start() takes ``shown`` up now, beside the stopping worker
            else:
                self.again = True

    def cancel_for(self, name: str) -> None:
        """Stop predicting ``name`` (a job predicts it now)."""
        if self._running and self.name == name:
            self._drop()

    def start(self) -> None:
        """Predict the image on screen if it has no prediction yet (and may have one)."""
        doc, project, model = self.editing.doc, self.editing.project, self.service.path
        if (
            doc is None
            or project is None
            or model is None
            or model == self.failed
            or doc.prediction is not None
            or doc.name in self.stopped
            or not self.ui.checked("actionAutoPredict")
            or self.jobs.kind is JobKind.PREDICT_ALL  # it predicts this image anyway
        ):
            return
        if self._running:
            self.leave(doc.name)
            if self._running:
                return
        if self.unfit is not None:  # said once, in the status bar; the model's name is marked
            self.failed = model
            self.ui.say(unfit_text(model.name, self.unfit), 15000)
            return
        if self.editing.status(doc.name) in (ImageStatus.REVIEWED, None):  # None: it vanished
            return
        cancel = threading.Event()
        self._cancel, self.name = cancel, doc.name
        self._big = max(doc.labels.shape[:2]) > BIG_SIDE
        if self._big:  # its first tile takes a while: say so, offer Stop now
            self._show_progress(doc.name, 0, 0)
        self.workers.start(
            # the pixels on screen: a huge file is not decoded a second time
            partial(predict_one, rgb=doc.image.rgb),
            self.service,
            project,
            doc.name,
            self.relay.reporter("auto", doc.name),
            cancel.is_set,
            returned=self._returned,
            errored=lambda exc, m=model: self._error(m, exc),
            finished=lambda c=cancel: self._finished(c),
        )

    def stop(self) -> None:
        """Stop predicting the shown image (Stop beside its progress); not retried by itself."""
        name = self.name
        if name is not None and self._running:
            self.stopped.add(name)
            self._drop()
            self.ui.say(
                f"Stopped predicting {name}; Model → Predict this image (Ctrl+P) predicts it.",
                10000,
            )

    def cancel(self) -> None:
        """Stop the prediction under way (if any); nothing is taken up after it."""
        self.again = False
        self._drop()

    def close(self) -> None:
        """Before the project closes: stop, and let the worker end."""
        self.cancel()
        self.workers.wait(AUTO_WAIT_S)

    def _returned(self, result: tuple[str, np.ndarray, np.ndarray] | None) -> None:
        if result is not None:  # None: cancelled
            self.predicted.emit(result)

    def _error(self, model: Path, exc: BaseException) -> None:
        if model != self.service.path:  # another model was chosen meanwhile: try with it
            self.again = True
            return
        if model == self.failed:  # known not to fit the classes any more: said already
            return
        msg = error_text(exc)
        log.warning("automatic prediction with %s failed: %s", model, msg)
        self.failed = model
        self.ui.say(f"Automatic prediction stopped: {msg}", 15000)

    def _finished(self, cancel: threading.Event) -> None:
        if cancel is not self._cancel:
            return  # a prediction stopped earlier has ended; the current one goes on
        self.name, self._big = None, False
        self.progress.setVisible(False)
        self.stop_button.setVisible(False)
        if self.again:
            self.again = False
            self.start()

    def _tile(self, who: str, name: str, done: int, total: int) -> None:
        """A tile of a big image is done: the status bar says how many."""
        if who != "auto" or total <= 1 or name != self.name or self._cancel.is_set():
            return
        self._big = True
        self._show_progress(name, done, total)

    def _show_progress(self, name: str, done: int, total: int) -> None:
        """``done`` of ``total`` tiles of ``name`` (total 0: not tiled yet)."""
        bar = self.progress
        bar.setRange(0, max(total, 1))  # not a busy bar: its text would not show
        bar.setValue(done)
        if total:
            bar.setFormat(f"Predicting {short_name(name)}: %v/%m")
            bar.setToolTip(f"{name} is predicted in {total} tiles")
        else:
            bar.setFormat(f"Predicting {short_name(name)}: starting…")
            bar.setToolTip(f"{name} is large: it is predicted tile by tile")
        bar.setVisible(True)
        self.stop_button.setVisible(True)
