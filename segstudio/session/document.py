"""The open image: its pixels, the editable labels, the prediction, and saving them.

Qt-free on purpose, shared by the window and tests: the window turns canvas
gestures into the edit operations here (paint, erase, accept, fill, polygon,
a placed region, a region placed again: GrabCut's refinements) and listens to
the document's events (``editor.changed`` with the changed rectangle,
``editor.history_changed``, :attr:`predicted`, :attr:`saved`,
:attr:`save_failed`, :attr:`noticed`, :attr:`reopened`). Saving copies the
labels on the calling thread (cheap) and writes the PNG on one background
thread, in order, so a big image never stalls the window and no two saves of
one image race.

A fill covers the connected region under the click, of the image's colours
(within a tolerance) or of the prediction's classes, and never leaves the
clicked pixel's label: an unlabelled click fills unlabelled pixels only.
Editing a reviewed image returns it to "in progress" (the status is written
with the next save, on the saver's thread).

Nothing a person painted is dropped:

- a save may come in the middle of a stroke (the part drawn so far is written;
  the stroke stays one undo step), so a long drag survives a crash;
- stored labels that no longer fit the image (its file was replaced by one of
  another size) are kept aside in the project, and :attr:`ImageDocument.notice`
  says where;
- when the project's classes were migrated behind the document's back (another
  handle or process), its labels are renumbered with the migration's recorded
  lookup table before they are saved, or, without one, kept aside.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from enum import Enum

import numpy as np
from psygnal import Signal

from segstudio.core.edit import LabelEditor
from segstudio.core.errors import SegStudioError
from segstudio.core.geometry import Rect
from segstudio.core.labelset import UNLABELED
from segstudio.core.tools import (
    DEFAULT_FILL_TOLERANCE,
    Placed,
    brush_segment,
    fill_region,
    polygon_region,
)
from segstudio.io.images import LoadedImage, read_image
from segstudio.io.project import ImageStatus, Project
from segstudio.session.saver import Saver

__all__ = ["FillBy", "ImageDocument", "PlacedAgain", "PredictionLayer", "Saver", "StrokeKind"]

log = logging.getLogger(__name__)


@dataclass
class PredictionLayer:
    """A model's prediction for one image: classes and confidence (uint8, 255 = sure)."""

    labels: np.ndarray
    confidence: np.ndarray


class FillBy(Enum):
    """What a fill compares to find the region under the click."""

    COLOUR = "colour"  # the image's colours, within a tolerance
    PREDICTION = "prediction"  # the prediction's classes


@dataclass(frozen=True)
class PlacedAgain:
    """A region placed by a tool that can place it again, refined (GrabCut).

    ``area`` is the part of the image the tool may touch, ``before`` the labels
    there before its first placement, ``changes`` the document's change count
    right after its last one: a refinement replaces the last placement (as a
    new undo step) only while nothing else changed the labels.
    """

    area: Rect
    before: np.ndarray
    changes: int


class StrokeKind(Enum):
    """What a brush stroke writes; the value names the undo step."""

    PAINT = "Brush"  # the chosen class
    ERASE = "Eraser"  # unlabeled
    ACCEPT = "Accept prediction brush"  # the prediction under the brush


class ImageDocument:
    """One image of a project, open for editing.

    *Events* (psygnal): ``predicted()`` when the prediction shown changed;
    ``saved(name)`` and ``save_failed(name, message)`` from the saver's thread
    (connect a thread-safe receiver); ``noticed(text)`` when :attr:`notice`
    changes after loading (on the thread that saves); ``reopened(name)`` when
    an edit made a reviewed image "in progress" again. Pixel changes come from
    ``editor.changed(rect)`` and ``editor.history_changed()``.

    :attr:`notice` is a message the user must see, or None: labels set aside
    because the image changed size, labels renumbered after a class migration
    made elsewhere.
    """

    predicted = Signal()
    saved = Signal(str)
    save_failed = Signal(str, str)
    noticed = Signal(str)
    reopened = Signal(str)

    def __init__(
        self, project: Project, name: str, saver: Saver, *, image: LoadedImage | None = None
    ) -> None:
        self.project = project
        self.name = name
        self._saver = saver
        self.notice: str | None = None
        # the class numbering the labels are in: a save after a class migration is refused
        self.labelset_version = project.labelset_version
        # ``image``: its pixels, read already (see segstudio.session.loading)
        self.image = image if image is not None else read_image(project.image_path(name))
        h, w = self.image.height, self.image.width
        stored = project.load_labels(name)
        if stored is not None and stored.shape != (h, w):
            self.notice = self._set_aside(stored.shape, (h, w))
            stored = None
        labels = stored if stored is not None else np.full((h, w), UNLABELED, np.uint8)
        self.editor = LabelEditor(np.ascontiguousarray(labels))
        # pixel changes so far, and at the last save: a save mid-stroke leaves the
        # editor dirty, and a tick of the autosave timer must not write the same again
        self._changes = 0
        self._saved_changes = 0
        self._pending: Future[None] | None = None  # the last save handed to the saver
        self.editor.changed.connect(self._count_change)
        #: whether the image is reviewed: an edit makes it "in progress" (see :meth:`save`)
        self.reviewed = project.record(name).status is ImageStatus.REVIEWED
        self._reopen = False  # the status change an edit owes to the store
        self._quiet = False  # labels replaced, not edited (a migration, a reload)
        self.prediction: PredictionLayer | None = None
        self._stroke: tuple[StrokeKind, int, bool] | None = None
        self.reload_prediction()

    def _set_aside(self, stored: tuple[int, ...], image: tuple[int, int]) -> str:
        """Keep labels that do not fit the image out of its way (never lost); the notice."""
        sizes = (
            f"the image is now {image[1]} x {image[0]} pixels but its labels are "
            f"{stored[1]} x {stored[0]}"
        )
        if self.project.read_only:
            return f"{self.name}: {sizes}; the project is read-only, so they stay as they are"
        try:
            path = self.project.set_labels_aside(self.name, f"{sizes} (the image file changed)")
        except SegStudioError as exc:  # e.g. a full disk: the next save sets them aside
            return (
                f"{self.name}: {sizes}; they stay stored and are kept aside when this image "
                f"is saved (moving them now failed: {exc})"
            )
        where = self.project.folder.name if path is None else path.relative_to(self.project.folder)
        return (
            f"{self.name}: {sizes}; the old labels were kept in {where} and the image "
            "starts unlabelled"
        )

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

    def fill_region(
        self,
        x: int,
        y: int,
        by: FillBy = FillBy.COLOUR,
        tolerance: int = DEFAULT_FILL_TOLERANCE,
    ) -> Placed | None:
        """Where a fill at (x, y) writes: the connected region of pixels like the clicked
        one (its colour within ``tolerance``, or its predicted class) that hold its label.

        None outside the image, or by prediction when there is none yet.
        """
        if by is FillBy.PREDICTION:
            if self.prediction is None:
                return None
            return fill_region(self.prediction.labels, self.labels, x, y, tolerance=0)
        return fill_region(self.image.rgb, self.labels, x, y, tolerance=tolerance)

    def fill(
        self,
        x: int,
        y: int,
        value: int,
        *,
        lock: bool = False,
        by: FillBy = FillBy.COLOUR,
        tolerance: int = DEFAULT_FILL_TOLERANCE,
    ) -> bool:
        """Fill the region :meth:`fill_region` finds with ``value`` (one undo step)."""
        return self.place(self.fill_region(x, y, by, tolerance), value, "Fill", lock=lock)

    def polygon(self, points: list[tuple[float, float]], value: int, *, lock: bool = False) -> bool:
        return self.place(polygon_region(self.labels.shape, points), value, "Polygon", lock=lock)

    def place(self, placed: Placed | None, value: int, step: str, *, lock: bool = False) -> bool:
        """Write ``value`` into a region (a fill, a polygon, GrabCut's box) as one undo step."""
        if placed is None:
            return False
        with self.editor.step(step):
            self._write(placed, value, lock)
        return True

    def place_again(
        self,
        placed: Placed | None,
        value: int,
        step: str,
        area: Rect,
        last: PlacedAgain | None = None,
        *,
        lock: bool = False,
    ) -> PlacedAgain:
        """Place a region that replaces ``last`` (a refinement), as one undo step.

        While nothing else changed the labels since ``last``, the pixels of
        ``area`` first go back to what they were before the first placement,
        so what the refinement drops is unlabelled again; otherwise (or with
        no ``last``) the region is placed over the labels as they are. The
        result is handed to the next refinement.
        """
        area = area.clip(*self.labels.shape)
        again = last is not None and last.changes == self._changes and last.area == area
        before = last.before if again and last is not None else self.labels[area.slices].copy()
        with self.editor.step(step):
            if again:
                self.editor.apply(area.y0, area.x0, np.ones(before.shape, bool), before)
            if placed is not None:
                self._write(placed, value, lock)
        return PlacedAgain(area, before, self._changes)

    def unlabeled(self) -> int:
        """How many pixels nobody has labelled."""
        return int(np.count_nonzero(self.labels == UNLABELED))

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
            self._replace(lambda: self.editor.set_labels(np.ascontiguousarray(stored)))

    def _replace(self, change: Callable[[], None]) -> None:
        """Change the labels without it counting as an edit (a reviewed image stays so)."""
        self._quiet = True
        try:
            change()
        finally:
            self._quiet = False

    @property
    def changes(self) -> int:
        """How many pixel changes so far (undo and redo count too): a version for caches."""
        return self._changes

    def _count_change(self, _rect: object) -> None:
        self._changes += 1
        if self.reviewed and not self._quiet:
            self.reviewed = False
            self._reopen = True
            self.reopened.emit(self.name)

    def set_reviewed(self, reviewed: bool) -> None:
        """The image's status was set (by the window, in the store): reviewed or not."""
        self.reviewed = reviewed
        if reviewed:
            self._reopen = False

    @property
    def unsaved(self) -> bool:
        """Whether the labels differ from what was last handed to the saver."""
        return self.editor.dirty and self._changes != self._saved_changes

    def save(self) -> Future[None] | None:
        """Save the labels if they changed; returns the pending write, if any.

        Also in the middle of a stroke: the part drawn so far is saved and the
        stroke goes on as one undo step (the rest is saved by a later call; while
        the previous save is still being written, a mid-stroke call waits for the
        next one rather than queue another copy of the labels).
        """
        if not self.unsaved:
            if self._reopen:  # edited and undone: the image was edited all the same
                self._reopen = False
                project, name = self.project, self.name
                return self._saver.call(lambda: project.set_status(name, ImageStatus.IN_PROGRESS))
            return None
        if self.stroking and self._pending is not None and not self._pending.done():
            return None  # a big image's last save is still writing: no pile of copies
        try:
            self._follow_migration()
        except SegStudioError as exc:  # the saver renumbers or keeps them, and retries
            log.warning("%s: could not follow the class migration yet: %s", self.name, exc)
        if not self.unsaved:
            return None  # the edits were kept aside, and the stored labels are shown
        future = self._saver.submit(
            self.project, self.name, self.labels.copy(), self.labelset_version, reopen=self._reopen
        )
        self._reopen = False
        self.editor.mark_saved()  # a failed write is kept by the saver and retried
        self._saved_changes = self._changes
        self._pending = future
        future.add_done_callback(self._save_done)
        return future

    def _follow_migration(self) -> None:
        """Renumber the labels if the project's classes were migrated since they loaded.

        The window migrates its open image itself (and updates
        :attr:`labelset_version`); this catches a migration made elsewhere.
        """
        current = self.project.labelset_version
        old = self.labelset_version
        if current == old:
            return
        lut = self.project.migration_lut(old)
        if lut is not None:
            self._replace(lambda: self.editor.remap(lut))  # undo works, in the new numbering
            self.labelset_version = current
            self.reload_prediction()
            self._say(
                f"{self.name}: the classes were changed elsewhere (label-set version {old} → "
                f"{current}); your labels were renumbered to match"
            )
            return
        path = self.project.keep_labels_aside(
            self.name,
            self.labels.copy(),
            f"the classes were migrated from version {old} to {current} with no recorded "
            "way to renumber the open labels",
            labelset_version=old,
        )
        self.labelset_version = current
        stored = self.project.load_labels(self.name)
        h, w = self.labels.shape
        fresh = stored if stored is not None and stored.shape == (h, w) else None
        self._stroke = None  # set_labels abandons the open undo step
        labels = fresh if fresh is not None else np.full((h, w), UNLABELED, np.uint8)
        self._replace(lambda: self.editor.set_labels(np.ascontiguousarray(labels)))
        self._saved_changes = self._changes
        self.reload_prediction()
        self._say(
            f"{self.name}: the classes were changed elsewhere and your unsaved labels cannot "
            f"be renumbered; they were kept in {path.relative_to(self.project.folder)}, and "
            "the image shows its stored labels"
        )

    def _say(self, text: str) -> None:
        log.warning("%s", text)
        self.notice = text
        self.noticed.emit(text)

    def _save_done(self, future: Future[None]) -> None:
        exc = future.exception()
        if exc is None:
            self.saved.emit(self.name)
        else:
            self.save_failed.emit(self.name, str(exc))
