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

Class migrations (delete, merge, reorder classes) are 256-entry lookup tables
applied with :func:`apply_lut`; :meth:`LabelEditor.remap` migrates the live
map and its history together.

Nothing here is thread-safe: one editor belongs to one thread (the GUI's).
"""

from __future__ import annotations

import contextlib
import logging
import numbers
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final

import cv2
import numpy as np
from psygnal import Signal

from segstudio.core.labelset import MAX_CLASSES, UNLABELED

__all__ = [
    "LabelEditor",
    "Rect",
    "apply_lut",
    "lut_delete",
    "lut_merge",
    "lut_move",
    "remap_lut",
]

_log = logging.getLogger(__name__)

DEFAULT_HISTORY_LIMIT_BYTES: Final[int] = 256 * 2**20
"""Default bound of the undo + redo history (256 MiB)."""

_ATOM_OVERHEAD: Final[int] = 128
"""Bytes charged per recorded apply besides its arrays (Python objects), so that many
tiny edits are bounded too."""

_STEP_OVERHEAD: Final[int] = 128
"""Bytes charged per undo step besides its applies."""


# --------------------------------------------------------------------------- Rect


@dataclass(frozen=True)
class Rect:
    """A half-open pixel rectangle ``[y0, y1) x [x0, x1)`` in (row, column) order.

    Parameters
    ----------
    y0, x0 : int
        First row and column inside the rectangle.
    y1, x1 : int
        First row and column past it. ``y1 <= y0`` or ``x1 <= x0`` is an empty
        rectangle.
    """

    y0: int
    x0: int
    y1: int
    x1: int

    @property
    def height(self) -> int:
        """Number of rows (0 when empty)."""
        return max(0, self.y1 - self.y0)

    @property
    def width(self) -> int:
        """Number of columns (0 when empty)."""
        return max(0, self.x1 - self.x0)

    @property
    def is_empty(self) -> bool:
        """Whether the rectangle holds no pixel."""
        return self.y1 <= self.y0 or self.x1 <= self.x0

    @property
    def slices(self) -> tuple[slice, slice]:
        """``(rows, columns)`` slices, so that ``array[rect.slices]`` is the rectangle."""
        return (slice(self.y0, self.y1), slice(self.x0, self.x1))

    def union(self, other: Rect) -> Rect:
        """Return the smallest rectangle holding both (an empty one is ignored)."""
        if other.is_empty:
            return self
        if self.is_empty:
            return other
        return Rect(
            min(self.y0, other.y0),
            min(self.x0, other.x0),
            max(self.y1, other.y1),
            max(self.x1, other.x1),
        )

    def clip(self, h: int, w: int) -> Rect:
        """Return the part inside an image of ``h`` rows and ``w`` columns (maybe empty)."""
        return Rect(max(0, self.y0), max(0, self.x0), min(h, self.y1), min(w, self.x1))


# ---------------------------------------------------------------- history records

# How the changed positions of an atom are stored (whichever is smallest):
_ALL: Final[int] = 0  # every pixel of the box changed: no positions
_BITS: Final[int] = 1  # np.packbits of the box's change mask: area / 8 bytes
_INDEX: Final[int] = 2  # flat indices in the box, uint16 or uint32: 2 or 4 bytes a pixel


@dataclass(frozen=True, slots=True)
class _Atom:
    """The pixels one apply changed.

    ``old``/``new`` are a single ``int`` when all changed pixels had (or got)
    the same value, else ``uint8`` arrays in row-major order of the positions.
    """

    rect: Rect
    kind: int
    positions: np.ndarray | None
    old: int | np.ndarray
    new: int | np.ndarray

    @property
    def nbytes(self) -> int:
        n = _ATOM_OVERHEAD
        if self.positions is not None:
            n += self.positions.nbytes
        for v in (self.old, self.new):
            if isinstance(v, np.ndarray):
                n += v.nbytes
        return n

    def write(self, labels: np.ndarray, values: int | np.ndarray) -> None:
        """Write ``values`` (``self.old`` or ``self.new``) at the recorded positions."""
        sub = labels[self.rect.slices]
        if self.kind == _ALL:
            sub[...] = values if not isinstance(values, np.ndarray) else values.reshape(sub.shape)
        elif self.kind == _BITS:
            area = sub.shape[0] * sub.shape[1]
            mask = np.unpackbits(self.positions, count=area).view(bool).reshape(sub.shape)
            sub[mask] = values
        else:
            rows, cols = np.divmod(self.positions, sub.shape[1])
            sub[rows, cols] = values

    def remapped(self, lut: np.ndarray) -> _Atom:
        """Return this atom with old and new values passed through ``lut``."""

        def remap(v: int | np.ndarray) -> int | np.ndarray:
            return np.take(lut, v) if isinstance(v, np.ndarray) else int(lut[v])

        return _Atom(self.rect, self.kind, self.positions, remap(self.old), remap(self.new))


@dataclass(slots=True)
class _Step:
    """One undo step: the applies of one drag (or one stand-alone apply), in order."""

    name: str
    serial: int
    atoms: list[_Atom] = field(default_factory=list)
    rect: Rect = field(default_factory=lambda: Rect(0, 0, 0, 0))
    nbytes: int = _STEP_OVERHEAD
    lost: bool = False  # grew past the byte limit: its changes were not kept

    @property
    def has_changes(self) -> bool:
        return self.lost or bool(self.atoms)

    def add(self, atom: _Atom) -> int:
        """Append ``atom``; return the bytes it adds."""
        self.atoms.append(atom)
        self.rect = self.rect.union(atom.rect)
        added = atom.nbytes
        self.nbytes += added
        return added


def _uniform(values: np.ndarray) -> int | np.ndarray:
    """Return the single value of ``values`` as an int if they are all equal, else the array."""
    first = values[0]
    if values.min() == first and values.max() == first:
        return int(first)
    return values


def _check_value(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"value must be an integer 0..255 or a uint8 array, got {value!r}")
    if not 0 <= int(value) <= 255:
        raise ValueError(f"value must lie in 0..255, got {value}")
    return int(value)


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


# --------------------------------------------------------------------- the editor


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
        self._labels = _check_labels(labels)
        self._limit = int(history_limit_bytes)
        self._undo: deque[_Step] = deque()
        self._redo: list[_Step] = []
        self._pending: _Step | None = None
        self._depth = 0
        self._bytes = 0
        self._serial = 0  # last step serial handed out
        self._base_serial = 0  # state id when the undo stack is empty
        self._saved_serial = 0

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
        return self._limit

    @property
    def history_bytes(self) -> int:
        """Bytes held by the undo and redo history, the open step included."""
        return self._bytes

    @property
    def in_step(self) -> bool:
        """Whether a step is open (between :meth:`begin_step` and :meth:`end_step`)."""
        return self._depth > 0

    @property
    def can_undo(self) -> bool:
        """Whether :meth:`undo` would undo a step."""
        return self._depth == 0 and bool(self._undo)

    @property
    def can_redo(self) -> bool:
        """Whether :meth:`redo` would redo a step."""
        return self._depth == 0 and bool(self._redo)

    @property
    def undo_name(self) -> str | None:
        """Name of the step :meth:`undo` would undo, or None."""
        return self._undo[-1].name if self.can_undo else None

    @property
    def redo_name(self) -> str | None:
        """Name of the step :meth:`redo` would redo, or None."""
        return self._redo[-1].name if self.can_redo else None

    @property
    def dirty(self) -> bool:
        """Whether the map was changed since :meth:`mark_saved` (or construction)."""
        if self._pending is not None and self._pending.has_changes:
            return True
        return self._state_serial() != self._saved_serial

    def mark_saved(self) -> None:
        """Record the current state as saved (:attr:`dirty` becomes False)."""
        if self._pending is not None and self._pending.has_changes:
            self._saved_serial = -1  # a mid-step state no undo or redo can reach again
        else:
            self._saved_serial = self._state_serial()
        self.history_changed.emit()

    def _state_serial(self) -> int:
        return self._undo[-1].serial if self._undo else self._base_serial

    def set_labels(self, labels: np.ndarray) -> None:
        """Edit another label map from now on (switching images).

        The history is cleared, an open step is abandoned and the new map
        counts as saved. Emits ``changed`` with the whole new map and
        ``history_changed``.
        """
        self._labels = _check_labels(labels)
        self._undo.clear()
        self._redo.clear()
        self._pending = None
        self._depth = 0
        self._bytes = 0
        self._serial += 1
        self._base_serial = self._saved_serial = self._serial
        h, w = labels.shape
        self.changed.emit(Rect(0, 0, h, w))
        self.history_changed.emit()

    def clear_history(self) -> None:
        """Forget all undo and redo steps; the pixels and the dirty state stay as they are."""
        if self._depth:
            raise RuntimeError("cannot clear the history while a step is open")
        dirty = self.dirty
        self._undo.clear()
        self._redo.clear()
        self._bytes = 0
        self._serial += 1
        self._base_serial = self._serial
        self._saved_serial = -1 if dirty else self._serial
        self.history_changed.emit()

    # ------------------------------------------------------------------ steps

    def begin_step(self, name: str) -> None:
        """Open an undo step: the applies until the matching :meth:`end_step` form one step.

        Calls nest by counting depth; the outermost name is kept.
        """
        self._depth += 1
        if self._depth == 1:
            self._serial += 1
            self._pending = _Step(str(name), self._serial)
            self.history_changed.emit()  # undo and redo are off until the step ends

    def end_step(self) -> None:
        """Close the step opened by :meth:`begin_step`; record it if it changed anything.

        Raises
        ------
        RuntimeError
            If no step is open.
        """
        if self._depth == 0:
            raise RuntimeError("end_step() without begin_step()")
        self._depth -= 1
        if self._depth:
            return
        step, self._pending = self._pending, None
        if step is None or not step.has_changes:
            # An empty step is not recorded (and its bytes were never counted).
            self.history_changed.emit()
            return
        if step.lost:
            # Its changes could not be kept: the state before it is out of reach.
            self._base_serial = step.serial
            _log.warning(
                "edit step %r was larger than the undo limit of %d bytes; it cannot be undone",
                step.name,
                self._limit,
            )
        else:
            self._commit(step)
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

    def _commit(self, step: _Step) -> None:
        """Push a finished step (its bytes are already counted) and trim the history."""
        self._undo.append(step)
        self._trim()

    def _trim(self) -> None:
        """Drop the oldest undo steps while the history is over the byte limit.

        Called after every recorded change, when the redo stack is already
        empty. If the open step alone is over the limit, it stops recording.
        """
        while self._bytes > self._limit and self._undo:
            old = self._undo.popleft()
            self._bytes -= old.nbytes
            self._base_serial = old.serial
            if not self._undo and self._pending is None:
                _log.warning(
                    "edit step %r was larger than the undo limit of %d bytes; it cannot be undone",
                    old.name,
                    self._limit,
                )
            else:
                _log.debug("undo history over %d bytes: dropped step %r", self._limit, old.name)
        pending = self._pending
        if self._bytes > self._limit and pending is not None and not pending.lost:
            self._bytes -= pending.nbytes
            pending.atoms.clear()
            pending.nbytes = 0
            pending.lost = True

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
        per_pixel = isinstance(value, np.ndarray)
        if per_pixel:
            if value.shape != mask.shape or value.dtype != np.uint8:
                raise ValueError(
                    f"a value array must be uint8 of the mask's shape {mask.shape}, "
                    f"got {value.dtype} {value.shape}"
                )
        else:
            value = _check_value(value)
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

        if per_pixel:
            value = value[local]
            changes = region != value
        else:
            changes = region != value
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
        if per_pixel:
            new_values = value[r0:r1, c0:c1][changes]
            sub[changes] = new_values
            new: int | np.ndarray = _uniform(new_values)
        else:
            sub[changes] = value
            new = value

        n = old.size
        bh, bw = r1 - r0, c1 - c0
        area = bh * bw
        positions: np.ndarray | None
        if n == area:
            kind, positions = _ALL, None
        else:
            index_size = 2 if area <= 1 << 16 else 4
            if n * index_size < (area + 7) // 8:
                kind = _INDEX
                positions = np.flatnonzero(changes).astype(
                    np.uint16 if index_size == 2 else np.uint32
                )
            else:
                kind, positions = _BITS, np.packbits(changes)
        rect = Rect(ty0 + r0, tx0 + c0, ty0 + r1, tx0 + c1)
        atom = _Atom(rect, kind, positions, _uniform(old), new)
        self._record(atom, name)
        self.changed.emit(rect)
        return rect

    def _record(self, atom: _Atom, name: str) -> None:
        """Add an atom to the open step, or make it a step of its own."""
        pending = self._pending
        first_change = pending is None or not pending.has_changes
        if first_change and self._redo:
            # A new edit after undo: the redo branch is gone.
            self._bytes -= sum(s.nbytes for s in self._redo)
            self._redo.clear()
        if pending is not None:
            if pending.lost:
                return
            if first_change:
                self._bytes += pending.nbytes
            self._bytes += pending.add(atom)
            if self._bytes > self._limit:
                self._trim()
            if first_change:
                self.history_changed.emit()
            return
        self._serial += 1
        step = _Step(str(name), self._serial)
        step.add(atom)
        self._bytes += step.nbytes
        self._commit(step)
        self.history_changed.emit()

    # ------------------------------------------------------------- undo / redo

    def undo(self) -> Rect | None:
        """Undo the newest step; return the rectangle it changed (None if nothing to undo)."""
        if not self.can_undo:
            return None
        step = self._undo.pop()
        for atom in reversed(step.atoms):
            atom.write(self._labels, atom.old)
        self._redo.append(step)
        self.changed.emit(step.rect)
        self.history_changed.emit()
        return step.rect

    def redo(self) -> Rect | None:
        """Redo the newest undone step; return the rectangle it changed (None if none)."""
        if not self.can_redo:
            return None
        step = self._redo.pop()
        for atom in step.atoms:
            atom.write(self._labels, atom.new)
        self._undo.append(step)
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
        lut = _check_lut(lut)
        apply_lut(self._labels, lut, out=self._labels)
        steps = [*self._undo, *self._redo]
        if self._pending is not None:
            steps.append(self._pending)
        for s in steps:
            s.atoms = [a.remapped(lut) for a in s.atoms]
        h, w = self._labels.shape
        self.changed.emit(Rect(0, 0, h, w))


# ------------------------------------------------------------ class-migration LUTs


def _check_lut(lut: object) -> np.ndarray:
    if not isinstance(lut, np.ndarray) or lut.shape != (256,) or lut.dtype != np.uint8:
        raise ValueError(
            "a label lookup table must be a uint8 array of shape (256,), got "
            f"{getattr(lut, 'dtype', type(lut).__name__)} {getattr(lut, 'shape', '')}"
        )
    return lut


def _check_num_classes(num_classes: int) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral):
        raise TypeError(f"number of classes must be an int, got {num_classes!r}")
    if not 1 <= num_classes <= MAX_CLASSES:
        raise ValueError(f"number of classes must lie in 1..{MAX_CLASSES}, got {num_classes}")
    return int(num_classes)


def _check_class(index: int, num_classes: int, what: str) -> int:
    if isinstance(index, bool) or not isinstance(index, numbers.Integral):
        raise TypeError(f"{what} must be an int class id, got {index!r}")
    if not 0 <= index < num_classes:
        raise ValueError(f"{what} {index} is not a class id 0..{num_classes - 1}")
    return int(index)


def _identity() -> np.ndarray:
    return np.arange(256, dtype=np.uint8)


def remap_lut(mapping: Mapping[int, int], num_old: int) -> np.ndarray:
    """Build a 256-entry class-migration table from ``{old id: new id}``.

    Parameters
    ----------
    mapping : Mapping[int, int]
        Old class ids (0..num_old-1) to new values (0..255; 255 unlabels).
    num_old : int
        Number of classes before the migration.

    Returns
    -------
    numpy.ndarray
        ``uint8`` array of shape (256,): ``lut[old]`` is the new value. Ids not
        in ``mapping`` map to themselves, and 255 stays 255.
    """
    num_old = _check_num_classes(num_old)
    lut = _identity()
    for old, new in mapping.items():
        old = _check_class(old, num_old, "old class")
        lut[old] = _check_value(new)
    return lut


def apply_lut(labels: np.ndarray, lut: np.ndarray, *, out: np.ndarray | None = None) -> np.ndarray:
    """Return ``lut[labels]`` for a ``uint8`` label map (cv2.LUT, about 1 ns a pixel).

    Parameters
    ----------
    labels : numpy.ndarray
        ``uint8`` label map of any shape.
    lut : numpy.ndarray
        256-entry ``uint8`` table.
    out : numpy.ndarray, optional
        Array of the same shape and dtype to write into; may be ``labels``
        itself (in place).

    Returns
    -------
    numpy.ndarray
        ``out`` if given, else a new array.
    """
    lut = _check_lut(lut)
    if not isinstance(labels, np.ndarray) or labels.dtype != np.uint8:
        raise ValueError(f"labels must be a uint8 array, got {getattr(labels, 'dtype', labels)}")
    if out is not None and (out.shape != labels.shape or out.dtype != np.uint8):
        raise ValueError(f"out must be uint8 of shape {labels.shape}, got {out.dtype} {out.shape}")
    contiguous = labels.flags.c_contiguous and (out is None or out.flags.c_contiguous)
    if labels.size == 0 or labels.ndim != 2 or not contiguous:
        # np.take buffers when out overlaps labels, so in place is safe here too.
        return np.take(lut, labels, out=out)
    if out is None:
        return cv2.LUT(labels, lut)
    result = cv2.LUT(labels, lut, dst=out)
    if result is not out:  # never expected; keep ``out`` authoritative
        np.copyto(out, result)
    return out


def lut_delete(num_classes: int, index: int) -> np.ndarray:
    """Table for deleting class ``index``: its pixels become unlabeled, higher ids move down 1."""
    n = _check_num_classes(num_classes)
    index = _check_class(index, n, "deleted class")
    lut = _identity()
    lut[index] = UNLABELED
    lut[index + 1 : n] = np.arange(index, n - 1, dtype=np.uint8)
    return lut


def lut_merge(num_classes: int, source: int, target: int) -> np.ndarray:
    """Table for merging class ``source`` into ``target``; ids above ``source`` move down 1.

    ``source`` pixels get ``target``'s id after the shift (``target - 1`` when
    ``target > source``).
    """
    n = _check_num_classes(num_classes)
    source = _check_class(source, n, "source class")
    target = _check_class(target, n, "target class")
    if source == target:
        raise ValueError(f"cannot merge class {source} into itself")
    lut = _identity()
    lut[source + 1 : n] = np.arange(source, n - 1, dtype=np.uint8)
    lut[source] = lut[target]
    return lut


def lut_move(num_classes: int, src: int, dst: int) -> np.ndarray:
    """Table for moving class ``src`` to position ``dst``; the classes between shift by 1.

    Same as ``classes.insert(dst, classes.pop(src))`` on the list of classes.
    """
    n = _check_num_classes(num_classes)
    src = _check_class(src, n, "moved class")
    dst = _check_class(dst, n, "destination")
    order = list(range(n))
    order.insert(dst, order.pop(src))
    lut = _identity()
    lut[np.array(order, dtype=np.intp)] = np.arange(n, dtype=np.uint8)
    return lut
