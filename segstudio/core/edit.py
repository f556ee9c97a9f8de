"""The one edit path of label maps, with an undo history of changed pixels only.

Every tool (brush, eraser, fill, polygon, box, GrabCut, accepting a
prediction) reduces to *a boolean mask placed at (y0, x0) and a new value*
and goes through :meth:`LabelEditor.apply`. The editor changes the live
label map in place and records, for the pixels that actually changed, their
positions inside the changed bounding box and their old and new values. A
brush stroke on a 12000 x 9000 image therefore costs time and memory in
proportion to the pixels it touches, never to the image.

Applies between :meth:`LabelEditor.begin_step` and :meth:`LabelEditor.end_step`
(or inside ``with editor.step(name):``) form one undo step: a whole drag is
undone at once. The history is bounded in bytes; the oldest steps go first.

The undo records and their byte bound live in :mod:`segstudio.core.history`,
:class:`Rect` in :mod:`segstudio.core.geometry`. Class migrations (delete,
merge, reorder classes) are 256-entry lookup tables from
:mod:`segstudio.core.migrate`, re-exported here; :meth:`LabelEditor.remap`
migrates the live map and its history together.

Nothing here is thread-safe: one editor belongs to one thread (the GUI's).
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Iterator

import numpy as np
from psygnal import Signal

from segstudio.core.geometry import Rect
from segstudio.core.history import DEFAULT_HISTORY_LIMIT_BYTES, History, encode_atom
from segstudio.core.labelset import UNLABELED
from segstudio.core.migrate import (
    apply_lut,
    check_lut,
    check_value,
    lut_delete,
    lut_merge,
    lut_move,
    remap_lut,
)

__all__ = [
    "LabelEditor",
    "Rect",
    "apply_lut",
    "lut_delete",
    "lut_merge",
    "lut_move",
    "remap_lut",
]


def _check_labels(labels: object) -> np.ndarray:
    if not isinstance(labels, np.ndarray):
        raise TypeError(f"labels must be a numpy array, got {type(labels).__name__}")
    if labels.ndim != 2 or labels.dtype != np.uint8:
        raise ValueError(
            f"labels must be a 2-D uint8 array, got shape {labels.shape} dtype {labels.dtype}"
        )
    if not labels.flags.writeable:
        raise ValueError("labels must be writeable: the editor changes it in place")
    return labels


class LabelEditor:
    """Edits one label map in place and keeps a byte-bounded undo history.

    Parameters
    ----------
    labels : numpy.ndarray
        The live ``uint8`` H x W label map. It is changed in place and never
        replaced (a view such as a QImage over its memory stays valid), except
        by :meth:`set_labels`.
    history_limit_bytes : int, default 256 MiB
        Bound of the bytes held by undo + redo; beyond it the oldest steps are
        dropped. A single step larger than the bound is applied but cannot be
        undone.

    Notes
    -----
    *Steps.* :meth:`begin_step` / :meth:`end_step` nest by counting depth: only
    the outermost pair makes a step, named by the outermost :meth:`begin_step`,
    so a tool that groups its own applies can run inside a larger group.
    :meth:`end_step` without an open step raises ``RuntimeError``. An apply
    outside any step is a step of its own. Steps that change nothing are not
    recorded. While a step is open, :meth:`undo` and :meth:`redo` do nothing
    (and :attr:`can_undo`/:attr:`can_redo` are False): the GUI cannot undo in
    the middle of a drag.

    *Dirty state.* :attr:`dirty` is True when the map differs from the last
    :meth:`mark_saved` by any recorded step; undoing or redoing back to the
    saved step reports clean again. Saving in the middle of an open step that
    already changed pixels leaves the editor dirty until the next save.

    *Signals.* ``changed(rect)`` after every change of pixels (apply, undo,
    redo, remap, set_labels) with the rectangle to repaint;
    ``history_changed()`` whenever :attr:`can_undo`, :attr:`can_redo`, the step
    names, :attr:`history_bytes` or :attr:`dirty` may have changed.
    """

    changed = Signal(object)
    """Emitted with the :class:`Rect` of pixels that changed."""

    history_changed = Signal()
    """Emitted when undo/redo availability, step names, history size or dirty state change."""

    def __init__(
        self, labels: np.ndarray, *, history_limit_bytes: int = DEFAULT_HISTORY_LIMIT_BYTES
    ) -> None:
        if isinstance(history_limit_bytes, bool) or not isinstance(
            history_limit_bytes, numbers.Integral
        ):
            raise TypeError(f"history_limit_bytes must be an int, got {history_limit_bytes!r}")
        if history_limit_bytes < 0:
            raise ValueError(f"history_limit_bytes must be >= 0, got {history_limit_bytes}")
        self._labels: np.ndarray = _check_labels(labels)
        self._history: History = History(int(history_limit_bytes))

    # ------------------------------------------------------------------ state

    @property
    def labels(self) -> np.ndarray:
        """The live label map (the same array object until :meth:`set_labels`)."""
        return self._labels

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` of the label map."""
        h, w = self._labels.shape
        return (h, w)

    @property
    def history_limit_bytes(self) -> int:
        """Bound of :attr:`history_bytes`."""
        return self._history.limit_bytes

    @property
    def history_bytes(self) -> int:
        """Bytes held by the undo and redo history, the open step included."""
        return self._history.nbytes

    @property
    def in_step(self) -> bool:
        """Whether a step is open (between :meth:`begin_step` and :meth:`end_step`)."""
        return self._history.in_step

    @property
    def can_undo(self) -> bool:
        """Whether :meth:`undo` would undo a step."""
        return self._history.can_undo

    @property
    def can_redo(self) -> bool:
        """Whether :meth:`redo` would redo a step."""
        return self._history.can_redo

    @property
    def undo_name(self) -> str | None:
        """Name of the step :meth:`undo` would undo, or None."""
        return self._history.undo_name

    @property
    def redo_name(self) -> str | None:
        """Name of the step :meth:`redo` would redo, or None."""
        return self._history.redo_name

    @property
    def dirty(self) -> bool:
        """Whether the map was changed since :meth:`mark_saved` (or construction)."""
        return self._history.dirty

    def mark_saved(self) -> None:
        """Record the current state as saved (:attr:`dirty` becomes False)."""
        self._history.mark_saved()
        self.history_changed.emit()

    def set_labels(self, labels: np.ndarray) -> None:
        """Edit another label map from now on (switching images).

        The history is cleared, an open step is abandoned and the new map
        counts as saved. Emits ``changed`` with the whole new map and
        ``history_changed``.
        """
        self._labels = _check_labels(labels)
        self._history.reset()
        h, w = labels.shape
        self.changed.emit(Rect(0, 0, h, w))
        self.history_changed.emit()

    def clear_history(self) -> None:
        """Forget all undo and redo steps; the pixels and the dirty state stay as they are."""
        self._history.clear()
        self.history_changed.emit()

    # ------------------------------------------------------------------ steps

    def begin_step(self, name: str) -> None:
        """Open an undo step: the applies until the matching :meth:`end_step` form one step.

        Calls nest by counting depth; the outermost name is kept.
        """
        if self._history.begin(name):
            self.history_changed.emit()  # undo and redo are off until the step ends

    def end_step(self) -> None:
        """Close the step opened by :meth:`begin_step`; record it if it changed anything.

        Raises
        ------
        RuntimeError
            If no step is open.
        """
        if self._history.end():
            self.history_changed.emit()

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[LabelEditor]:
        """Group the applies of a ``with`` block into one undo step.

        Examples
        --------
        >>> with editor.step("Brush"):  # doctest: +SKIP
        ...     for p0, p1 in segments:
        ...         editor.apply(*brush(p0, p1), value=3)
        """
        self.begin_step(name)
        try:
            yield self
        finally:
            self.end_step()

    # ------------------------------------------------------------------ apply

    def apply(
        self,
        y0: int,
        x0: int,
        mask: np.ndarray,
        value: int | np.ndarray,
        *,
        only_unlabeled: bool = False,
        name: str = "Edit",
    ) -> Rect | None:
        """Set the pixels under ``mask`` to ``value``: the single way tools edit a map.

        Parameters
        ----------
        y0, x0 : int
            Image position of ``mask[0, 0]``; may be negative. The mask is
            clipped to the image.
        mask : numpy.ndarray
            2-D boolean patch (other dtypes are read as ``!= 0``).
        value : int or numpy.ndarray
            A class id (0..255, 255 erases) or a ``uint8`` array of the mask's
            shape with one value per pixel (for example a prediction).
        only_unlabeled : bool, default False
            Change only pixels that are :data:`UNLABELED` now (the "paint only
            unlabeled" lock).
        name : str, default "Edit"
            Name of the undo step when no step is open (ignored inside one).

        Returns
        -------
        Rect or None
            Bounding box of the pixels that changed, or None if none did.

        Notes
        -----
        Cost is proportional to the mask's size. Only changed pixels are
        recorded: their bounding box, positions (packed bits or flat indices,
        whichever is smaller; nothing when the whole box changed) and old and
        new values (one number when they are all equal).
        """
        if not isinstance(mask, np.ndarray) or mask.ndim != 2:
            raise ValueError(f"mask must be a 2-D array, got {getattr(mask, 'shape', mask)!r}")
        values: np.ndarray | None = None  # one value per mask pixel (a value array)
        fill = 0  # else the single value every changed pixel gets
        if isinstance(value, np.ndarray):
            if value.shape != mask.shape or value.dtype != np.uint8:
                raise ValueError(
                    f"a value array must be uint8 of the mask's shape {mask.shape}, "
                    f"got {value.dtype} {value.shape}"
                )
            values = value
        else:
            fill = check_value(value)
        if mask.dtype != np.bool_:
            mask = mask != 0

        # Clip the placed patch to the image.
        h, w = self._labels.shape
        y0, x0 = int(y0), int(x0)
        mh, mw = mask.shape
        ty0, tx0 = max(0, y0), max(0, x0)
        ty1, tx1 = min(h, y0 + mh), min(w, x0 + mw)
        if ty1 <= ty0 or tx1 <= tx0:
            return None
        local = (slice(ty0 - y0, ty1 - y0), slice(tx0 - x0, tx1 - x0))
        mask = mask[local]
        region = self._labels[ty0:ty1, tx0:tx1]

        if values is not None:
            values = values[local]
            changes = region != values
        else:
            changes = region != fill
        changes &= mask
        if only_unlabeled:
            changes &= region == UNLABELED

        rows = np.flatnonzero(changes.any(axis=1))
        if rows.size == 0:
            return None
        cols = np.flatnonzero(changes.any(axis=0))
        r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        changes = changes[r0:r1, c0:c1]
        sub = region[r0:r1, c0:c1]

        old = sub[changes]
        new: int | np.ndarray
        if values is not None:
            new_values = values[r0:r1, c0:c1][changes]
            sub[changes] = new_values
            new = new_values
        else:
            sub[changes] = fill
            new = fill

        rect = Rect(ty0 + r0, tx0 + c0, ty0 + r1, tx0 + c1)
        if self._history.record(encode_atom(rect, changes, old, new), name):
            self.history_changed.emit()
        self.changed.emit(rect)
        return rect

    # ------------------------------------------------------------- undo / redo

    def undo(self) -> Rect | None:
        """Undo the newest step; return the rectangle it changed (None if nothing to undo)."""
        step = self._history.undo()
        if step is None:
            return None
        for atom in reversed(step.atoms):
            atom.write(self._labels, atom.old)
        self.changed.emit(step.rect)
        self.history_changed.emit()
        return step.rect

    def redo(self) -> Rect | None:
        """Redo the newest undone step; return the rectangle it changed (None if none)."""
        step = self._history.redo()
        if step is None:
            return None
        for atom in step.atoms:
            atom.write(self._labels, atom.new)
        self.changed.emit(step.rect)
        self.history_changed.emit()
        return step.rect

    # ---------------------------------------------------------- class migration

    def remap(self, lut: np.ndarray) -> None:
        """Pass the live map and every recorded value through a class-migration table.

        Use this when classes are deleted, merged or reordered while an image
        is open: the pixels are changed in place (one pass over the image) and
        the undo/redo history is remapped too, so undoing afterwards restores
        the migrated old values. This is not an undo step, and the dirty state
        is kept: the stored masks are migrated the same way.

        Parameters
        ----------
        lut : numpy.ndarray
            256-entry ``uint8`` table, e.g. from :func:`lut_delete`.
        """
        lut = check_lut(lut)
        apply_lut(self._labels, lut, out=self._labels)
        self._history.remap(lut)
        h, w = self._labels.shape
        self.changed.emit(Rect(0, 0, h, w))
