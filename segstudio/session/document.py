"""The open image: its pixels, the editable labels, the prediction, and saving them.

Qt-free on purpose, shared by the window and tests: the window turns canvas
gestures into the edit operations here (paint, erase, accept, fill, polygon,
a placed region) and listens to the document's events (``editor.changed``
with the changed rectangle, ``editor.history_changed``, :attr:`predicted`,
:attr:`saved`, :attr:`save_failed`). Saving copies the labels on the calling thread (cheap) and
writes the PNG on one background thread, in order, so a big image never
stalls the window and no two saves of one image race.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum

import numpy as np
from psygnal import Signal

from segstudio.core.edit import LabelEditor
from segstudio.core.errors import SegStudioError
from segstudio.core.labelset import UNLABELED
from segstudio.core.tools import Placed, brush_segment, flood_region, polygon_region
from segstudio.io.images import LoadedImage, read_image
from segstudio.io.project import ImageStatus, Project

log = logging.getLogger(__name__)


@dataclass
class PredictionLayer:
    """A model's prediction for one image: classes and confidence (uint8, 255 = sure)."""

    labels: np.ndarray
    confidence: np.ndarray


class Saver:
    """Writes label maps on one background thread, in submission order.

    A write that fails (disk full, permission denied) is not lost: its labels
    are kept in :attr:`failed` and written again by :meth:`retry_failed`, and
    ``on_error(name, message)`` is called (from the saver thread) so the
    window can tell the user.
    """

    def __init__(self, on_error: Callable[[str, str], None] | None = None) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="segstudio-save")
        self._lock = threading.Lock()
        self._pending: list[Future[None]] = []
        self.failed: dict[str, tuple[Project, np.ndarray, int | None]] = {}
        self.on_error = on_error

    def submit(
        self, project: Project, name: str, labels: np.ndarray, version: int | None = None
    ) -> Future[None]:
        def write() -> None:
            try:
                project.save_labels(name, labels, labelset_version=version)
            except (SegStudioError, OSError) as exc:
                with self._lock:
                    self.failed[name] = (project, labels, version)
                log.error("saving labels of %s failed: %s", name, exc)  # noqa: TRY400 - expected
                if self.on_error is not None:
                    self.on_error(name, str(exc))
                raise
            with self._lock:
                self.failed.pop(name, None)

        future = self._pool.submit(write)
        with self._lock:
            self._pending = [f for f in self._pending if not f.done()] + [future]
        return future

    def retry_failed(self) -> None:
        """Queue again every write that failed (newer saves of an image replace it)."""
        with self._lock:
            failed = dict(self.failed)
        for name, (project, labels, version) in failed.items():
            self.submit(project, name, labels, version)

    def wait(self, timeout: float | None = None) -> None:
        """Block until every submitted save has finished."""
        with self._lock:
            pending = list(self._pending)
        for future in pending:
            future.exception(timeout=timeout)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)


class StrokeKind(Enum):
    """What a brush stroke writes; the value names the undo step."""

    PAINT = "Brush"  # the chosen class
    ERASE = "Eraser"  # unlabeled
    ACCEPT = "Accept prediction brush"  # the prediction under the brush


class ImageDocument:
    """One image of a project, open for editing.

    *Events* (psygnal): ``predicted()`` when the prediction shown changed;
    ``saved(name)`` and ``save_failed(name, message)`` from the saver's thread
    (connect a thread-safe receiver). Pixel changes come from
    ``editor.changed(rect)`` and ``editor.history_changed()``.
    """

    predicted = Signal()
    saved = Signal(str)
    save_failed = Signal(str, str)

    def __init__(self, project: Project, name: str, saver: Saver) -> None:
        self.project = project
        self.name = name
        self._saver = saver
        # the class numbering the labels are in: a save after a class migration is refused
        self.labelset_version = project.labelset_version
        self.image: LoadedImage = read_image(project.image_path(name))
        h, w = self.image.height, self.image.width
        stored = project.load_labels(name)
        if stored is not None and stored.shape != (h, w):
            log.warning(
                "%s: stored labels are %s, the image is %s; starting empty",
                name,
                stored.shape,
                (h, w),
            )
            stored = None
        labels = stored if stored is not None else np.full((h, w), UNLABELED, np.uint8)
        self.editor = LabelEditor(np.ascontiguousarray(labels))
        self.prediction: PredictionLayer | None = None
        self._stroke: tuple[StrokeKind, int, bool] | None = None
        self.reload_prediction()

    @property
    def labels(self) -> np.ndarray:
        return self.editor.labels

    @property
    def status(self) -> ImageStatus:
        return self.project.record(self.name).status

    def reload_prediction(self) -> None:
        stored = self.project.load_prediction(self.name)
        if stored is None or stored[0].shape != self.labels.shape:
            self.prediction = None
        else:
            self.prediction = PredictionLayer(*stored)
        self.predicted.emit()

    def set_prediction(self, labels: np.ndarray, confidence: np.ndarray) -> bool:
        """Show a prediction just made (it is stored already); False if it does not fit."""
        if labels.shape != self.labels.shape:
            return False
        self.prediction = PredictionLayer(labels, confidence)
        self.predicted.emit()
        return True

    # -- editing: every change goes through the editor, one undo step each ------------------

    @property
    def stroking(self) -> bool:
        return self._stroke is not None

    def begin_stroke(self, kind: StrokeKind, value: int = UNLABELED, *, lock: bool = False) -> None:
        """Start a brush stroke (one undo step); ``value`` is the class PAINT writes,
        ``lock`` keeps labelled pixels as they are."""
        if self._stroke is not None:
            self.end_stroke()
        self._stroke = (kind, value, lock)
        self.editor.begin_step(kind.value)

    def stroke_to(self, x0: float, y0: float, x1: float, y1: float, radius: float) -> None:
        """Paint the brush along one segment of the stroke."""
        if self._stroke is None:
            return
        kind, value, lock = self._stroke
        placed = brush_segment(self.labels.shape, (x0, y0), (x1, y1), radius)
        if placed is None:
            return
        if kind is StrokeKind.ERASE:
            self._write(placed, UNLABELED, lock)
        elif kind is StrokeKind.ACCEPT:
            if self.prediction is None:
                return
            h, w = placed.mask.shape
            patch = self.prediction.labels[placed.y0 : placed.y0 + h, placed.x0 : placed.x0 + w]
            self._write(placed, np.ascontiguousarray(patch), lock)
        else:
            self._write(placed, value, lock)

    def end_stroke(self) -> bool:
        """End the stroke; False when none was under way."""
        if self._stroke is None:
            return False
        self._stroke = None
        self.editor.end_step()
        return True

    def fill(self, x: int, y: int, value: int, *, lock: bool = False) -> bool:
        """Fill the region of equal labels around (x, y) with ``value``."""
        return self.place(flood_region(self.labels, x, y), value, "Fill", lock=lock)

    def polygon(self, points: list[tuple[float, float]], value: int, *, lock: bool = False) -> bool:
        return self.place(polygon_region(self.labels.shape, points), value, "Polygon", lock=lock)

    def place(self, placed: Placed | None, value: int, step: str, *, lock: bool = False) -> bool:
        """Write ``value`` into a region (a fill, a polygon, GrabCut's box) as one undo step."""
        if placed is None:
            return False
        with self.editor.step(step):
            self._write(placed, value, lock)
        return True

    def accept_prediction(self) -> bool:
        """Copy the prediction into every unlabeled pixel (one undo step); False when
        there is no prediction yet."""
        if self.prediction is None:
            return False
        mask = np.ones(self.labels.shape, bool)
        with self.editor.step("Accept prediction"):
            self.editor.apply(0, 0, mask, self.prediction.labels, only_unlabeled=True)
        return True

    def pick(self, x: int, y: int) -> int | None:
        """The class at (x, y): the label, else the prediction; None when neither has one."""
        value = int(self.labels[y, x])
        if value == UNLABELED and self.prediction is not None:
            value = int(self.prediction.labels[y, x])
        return None if value == UNLABELED else value

    def _write(self, placed: Placed, value: int | np.ndarray, lock: bool) -> None:
        self.editor.apply(placed.y0, placed.x0, placed.mask, value, only_unlabeled=lock)

    def reload_labels(self) -> None:
        """Re-read the stored labels (after a class migration); clears undo history."""
        stored = self.project.load_labels(self.name)
        if stored is not None and stored.shape == self.labels.shape:
            self.editor.set_labels(np.ascontiguousarray(stored))

    def save(self) -> Future[None] | None:
        """Save the labels if they changed; returns the pending write, if any."""
        if not self.editor.dirty:
            return None
        future = self._saver.submit(
            self.project, self.name, self.labels.copy(), self.labelset_version
        )
        self.editor.mark_saved()  # a failed write is kept by the saver and retried
        future.add_done_callback(self._save_done)
        return future

    def _save_done(self, future: Future[None]) -> None:
        exc = future.exception()
        if exc is None:
            self.saved.emit(self.name)
        else:
            self.save_failed.emit(self.name, str(exc))
