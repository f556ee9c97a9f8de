"""Learn as I paint: the live learner in a worker of its own, fed after every edit.

The window tells this controller what the user did (an edit finished on an
image, an image was shown); one worker thread does the rest, in order:

1. on start, it reads every labelled image of the project into the learner
   (:class:`~segstudio.training.live.LiveLearner`) and fits it;
2. after an edit (the latest labels of that image, taken on the GUI thread
   after a short pause, so a quick series of strokes is one update) it
   resamples that image, refits the head (a few seconds on a laptop CPU),
   predicts the image on screen and stores the prediction;
3. then, while nothing newer waits, it re-predicts the images nobody
   reviewed, in list order from the one on screen.

Predictions go to the project like any other (never onto painted pixels or
reviewed images) and to the window through :attr:`LiveLearning.predicted`.
The learner's model is stored as ``.segstudio/models/live.safetensors`` now
and then, and when it stops, so the model list shows it and the CLI can use it.

Stopping (switched off, the project closes, the app quits) is asked between
any two images and within a fit or a prediction (every minibatch, every layer
of the network), so the worker ends within a moment; closing waits for it,
its last save included, before anything is torn down.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal
from superqt.utils import create_worker

from segstudio.core.bundled import bundled_model_path
from segstudio.core.errors import SegStudioError
from segstudio.gui.jobs import wait_for
from segstudio.io.images import read_image
from segstudio.io.project import ImageStatus, Project
from segstudio.io.project.models import ModelKind, read_summary

log = logging.getLogger(__name__)

#: Pause after an edit before the learner takes it (a series of strokes is one update).
SETTLE_MS = 600
#: Unreviewed images re-predicted in the background after each update.
BACKGROUND_IMAGES = 8
#: Seconds between two saves of the live model file.
SAVE_EVERY_S = 30.0
#: How long stopping waits for the worker (it ends within a step: an image's features).
STOP_WAIT_S = 30.0
LIVE_MODEL_NAME = "live.safetensors"


class _Queue:
    """What the worker has still to do; the GUI thread adds, the worker takes."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.edits: dict[str, np.ndarray] = {}  # image -> its latest labels
        self.shown: str | None = None
        self.shown_new = False
        self.stopped = False

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify_all()

    def take(self, timeout: float) -> tuple[dict[str, np.ndarray], str | None, bool]:
        with self.cond:
            if not self.edits and not self.shown_new and not self.stopped:
                self.cond.wait(timeout)
            edits, self.edits = self.edits, {}
            shown_new, self.shown_new = self.shown_new, False
            return edits, self.shown, shown_new

    def busy(self) -> bool:
        with self.cond:
            return bool(self.edits) or self.shown_new or self.stopped


def _unreviewed(project: Project, shown: str | None) -> list[str]:
    """Images nobody reviewed, in list order from the one after ``shown``, around to it."""
    names = [r.name for r in project.images() if r.status is not ImageStatus.REVIEWED]
    if shown in names:
        k = names.index(shown)
        names = names[k + 1 :] + names[:k]
    return names


def _serve(project: Project, base_path: Path, queue: _Queue) -> Iterator[tuple[str, Any]]:
    """The worker: yields ("status", text), ("predicted", (name, labels, conf)) and
    ("saved", path) when it wrote the live model file.

    ``queue.stopped`` is asked between any two images and within every fit and
    prediction; once stopped, the worker saves what it learnt and returns.
    """
    from segstudio.model.files import load_model, save_model
    from segstudio.training.live import LiveLearner
    from segstudio.training.live_quick import REPLAY_MAX_PIXELS, spread

    def stopped() -> bool:
        return queue.stopped

    learner = LiveLearner(load_model(base_path), project.labelset_or_default())
    if stopped():
        return

    unsaved = False  # fitted since the live model file was last written

    def save() -> bool:
        nonlocal unsaved
        unsaved = False
        try:
            save_model(
                project.models_dir / LIVE_MODEL_NAME, learner.model(project=str(project.folder))
            )
        except (SegStudioError, OSError) as exc:
            log.warning("live learner: model not saved: %s", exc)
            return False
        return True

    def learn(name: str, labels: np.ndarray | None = None) -> None:
        """Take an image's labels (read from the project when not given)."""
        try:
            labels = project.load_labels(name) if labels is None else labels
            if labels is not None:
                learner.add_image(name, read_image(project.image_path(name)).rgb, labels)
        except SegStudioError as exc:
            log.warning("live learner: %s skipped: %s", name, exc)

    labelled = (ImageStatus.IN_PROGRESS, ImageStatus.REVIEWED)
    records = [r for r in project.images() if r.status in labelled]
    for i, rec in enumerate(records, 1):  # every labelled image of the project
        if stopped():
            break
        learn(rec.name)
        yield "status", f"Learn as I paint: reading labelled image {i}/{len(records)}"
    if learner.images and not stopped():
        unsaved = True
        yield "status", _fitted(learner.fit(cancelled=stopped))
    # unlabelled images whose base-network answers are replayed (when it knows every
    # class), one at a time between the other work, then a refit with them all
    fresh = (ImageStatus.UNLABELED, ImageStatus.PREDICTED)
    replay = spread([r.name for r in project.images() if r.status in fresh])
    replay = replay if learner.replays else []
    fitted_for: set[str] = set()  # images predicted by the current head
    background = True  # some unreviewed images may still lack the current head's prediction
    last_save = 0.0
    while not stopped():
        # idle: sleep until told; with background work left: only look
        edits, shown, shown_new = queue.take(timeout=0.0 if background or replay else 5.0)
        if stopped():
            break
        if replay and not edits:
            name = replay.pop(0)
            try:
                path = project.image_path(name)
                rgb = read_image(path, max_pixels=REPLAY_MAX_PIXELS).rgb
                learner.add_replay(name, rgb, cancelled=stopped)
            except SegStudioError as exc:
                log.info("live learner: %s not replayed: %s", name, exc)
            if stopped():
                break
            if not replay and learner.images and learner.replayed:
                unsaved = True
                yield "status", _fitted(learner.fit(cancelled=stopped))
                fitted_for.clear()
                background = True
        if edits:
            for name, labels in edits.items():
                if stopped():
                    break
                learn(name, labels)
            if not learner.images or stopped():
                continue
            unsaved = True
            yield "status", _fitted(learner.fit(cancelled=stopped))
            fitted_for.clear()
            background = True
            if time.monotonic() - last_save > SAVE_EVERY_S:
                if save():
                    yield "saved", project.models_dir / LIVE_MODEL_NAME
                last_save = time.monotonic()
        background = background or shown_new
        if not learner.ready:
            background = False
            continue
        todo = [shown] if shown and (edits or shown_new or shown not in fitted_for) else []
        if background:
            rest = [n for n in _unreviewed(project, shown) if n not in fitted_for]
            background = len(rest) > BACKGROUND_IMAGES
            todo += rest[:BACKGROUND_IMAGES]
        for name in todo:
            if stopped():
                break
            if name != shown and queue.busy():
                background = True
                break  # something newer to learn or show: that first
            try:
                if project.record(name).status is ImageStatus.REVIEWED:
                    fitted_for.add(name)
                    continue
                rgb = read_image(project.image_path(name)).rgb
                if stopped():
                    break
                pred = learner.predict(rgb, cancelled=stopped)
                conf = np.clip(np.rint(pred.confidence.astype(np.float32) * 255), 0, 255)
                conf = conf.astype(np.uint8)
                project.save_prediction(name, pred.labels, conf, model="live learner")
            except SegStudioError as exc:
                if stopped():  # the prediction was cancelled: nothing stored
                    break
                log.warning("live learner: %s not predicted: %s", name, exc)
                fitted_for.add(name)
                continue
            fitted_for.add(name)
            yield "predicted", (name, pred.labels, conf)
    if unsaved and learner.fitted:  # what it learnt stays the project's live model
        save()


def live_base(active: Path | None) -> Path | None:
    """The SegNet the live learner reads: the active model when it is a SegNet (or a
    live model, which goes on learning), else the bundled model; None without either.

    Reads the model file's header only (no torch), so the GUI thread may call it.
    """
    if active is not None and read_summary(active, ModelKind.FILE).arch in ("segnet", "live"):
        return active
    return bundled_model_path()


def _fitted(report: Any) -> str:
    n = report.replayed
    others = f" and the model's sure answers on {n} other(s)" if n else ""
    return (
        f"Learnt from {report.images} image(s){others}, {report.samples:,} pixels, "
        f"in {report.seconds:.1f} s"
    )


class LiveLearning(QObject):
    """The window's side of "Learn as I paint".

    Signals
    -------
    predicted(tuple)
        ``(name, labels, confidence)`` of an image the live learner predicted
        (already stored in the project).
    saved(Path)
        The live model file was written (while it learns; not on its way out).
    status(str)
        A line for the status bar.
    """

    predicted = Signal(object)
    saved = Signal(object)
    status = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._queue: _Queue | None = None
        self._worker: Any = None
        #: the model file the running learner reads (None when it does not run)
        self.base: Path | None = None
        self._pending: tuple[str, Callable[[], np.ndarray]] | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(SETTLE_MS)
        self._timer.timeout.connect(self._hand_over)

    @property
    def running(self) -> bool:
        """Whether it learns (a worker that was asked to stop does not count)."""
        return self._queue is not None

    @property
    def busy(self) -> bool:
        """Whether its worker still runs (learning, or saving on its way out)."""
        return self._worker is not None

    def start(self, project: Project, base: Path) -> None:
        """Start learning in ``project`` from the SegNet ``base`` (a model file)."""
        self.stop()
        queue = _Queue()
        worker = create_worker(
            _serve, project, base, queue, _start_thread=False, _ignore_errors=True
        )
        worker.yielded.connect(partial(self._report, queue))
        worker.errored.connect(self._failed)
        worker.finished.connect(lambda w=worker: self._finished(w))
        self._queue, self._worker, self.base = queue, worker, base
        worker.start()

    def stop(self, wait_s: float = STOP_WAIT_S) -> bool:
        """Ask the worker to stop and wait for it to end (at most ``wait_s``), its save of
        the live model included; False if it still runs (:attr:`busy` says when it ends).

        The worker returns by itself: it is never abandoned at a ``yield`` (its save at
        the end would be skipped), and what it reports from now on is dropped.
        """
        self._timer.stop()
        self._pending = None
        queue, worker = self._queue, self._worker
        self._queue, self.base = None, None
        if queue is not None:
            queue.stop()
        if worker is None:
            return True
        if wait_for(worker.finished, lambda: self._worker is not worker, wait_s):
            return True
        log.warning("the live learner still runs %.0f s after it was asked to stop", wait_s)
        return False

    def edited(self, name: str, labels: Callable[[], np.ndarray]) -> None:
        """An edit finished on ``name``; ``labels()`` copies its labels when the pause is over."""
        if self._queue is None:
            return
        if self._pending is not None and self._pending[0] != name:
            self._hand_over()  # another image's edit: hand that one over first
        self._pending = (name, labels)
        self._timer.start()

    def shown(self, name: str) -> None:
        """The window shows ``name``: predict it when the learner can."""
        self.flush()
        if self._queue is None:
            return
        with self._queue.cond:
            self._queue.shown = name
            self._queue.shown_new = True
            self._queue.cond.notify_all()

    def flush(self) -> None:
        """Hand a waiting edit over now (before the image changes)."""
        if self._pending is not None:
            self._timer.stop()
            self._hand_over()

    def _hand_over(self) -> None:
        pending, self._pending = self._pending, None
        if pending is None or self._queue is None:
            return
        name, labels = pending
        with self._queue.cond:
            self._queue.edits[name] = labels()
            self._queue.cond.notify_all()

    def _report(self, queue: _Queue, item: tuple[str, Any]) -> None:
        if queue.stopped:
            return  # said on its way out: the project may be closing
        kind, value = item
        if kind == "predicted":
            self.predicted.emit(value)
        elif kind == "saved":
            self.saved.emit(value)
        else:
            self.status.emit(value)

    def _failed(self, exc: BaseException) -> None:
        msg = str(exc) if isinstance(exc, SegStudioError) else f"{type(exc).__name__}: {exc}"
        log.warning("live learner stopped: %s", msg)
        self.status.emit(f"Learn as I paint stopped: {msg}")

    def _finished(self, worker: Any) -> None:
        if self._worker is worker:
            self._worker = None
            self._queue = None  # it ended by itself (an error): not learning any more
