"""The open image: its pixels, the editable labels, the prediction, and saving them.

Qt-free on purpose: the window shows a :class:`ImageDocument`, tests drive
it directly. Saving copies the labels on the calling thread (cheap) and
writes the PNG on one background thread, in order, so a big image never
stalls the window and no two saves of one image race.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from segstudio.core.edit import LabelEditor
from segstudio.core.errors import SegStudioError
from segstudio.core.labelset import UNLABELED
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
                log.error("saving labels of %s failed: %s", name, exc)
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


class ImageDocument:
    """One image of a project, open for editing."""

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
        return future
