"""The undo/redo history of a label map: only changed pixels, bounded in bytes.

An :class:`Atom` records the pixels one apply changed: their bounding box,
their positions inside it (nothing when the whole box changed, else packed
bits or flat indices, whichever is smaller) and their old and new values (one
number when they are all equal). A :class:`Step` is the atoms of one drag or
one stand-alone apply, undone at once. :class:`History` keeps the undo and
redo stacks of steps, the step being recorded, the byte count (the oldest
steps are dropped past the bound) and the serials that tell whether the map is
back at its saved state.

The history never touches a label map except through :meth:`Atom.write`; the
editor (:class:`segstudio.core.edit.LabelEditor`) writes pixels, emits its
signals and asks the history what changed. Nothing here is thread-safe.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from segstudio.core.geometry import Rect

__all__ = [
    "DEFAULT_HISTORY_LIMIT_BYTES",
    "Atom",
    "History",
    "Step",
    "encode_atom",
]

_log = logging.getLogger(__name__)

DEFAULT_HISTORY_LIMIT_BYTES: Final[int] = 256 * 2**20
"""Default bound of the undo + redo history (256 MiB)."""

_ATOM_OVERHEAD: Final[int] = 128
"""Bytes charged per recorded apply besides its arrays (Python objects), so that many
tiny edits are bounded too."""

_STEP_OVERHEAD: Final[int] = 128
"""Bytes charged per undo step besides its applies."""

# How the changed positions of an atom are stored (whichever is smallest):
_ALL: Final[int] = 0  # every pixel of the box changed: no positions
_BITS: Final[int] = 1  # np.packbits of the box's change mask: area / 8 bytes
_INDEX: Final[int] = 2  # flat indices in the box, uint16 or uint32: 2 or 4 bytes a pixel


# ------------------------------------------------------------------------ records


@dataclass(frozen=True, slots=True)
class Atom:
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
        """Bytes this record holds, its fixed overhead included."""
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
            assert self.positions is not None  # only _ALL atoms have no positions
            area = sub.shape[0] * sub.shape[1]
            mask = np.unpackbits(self.positions, count=area).view(bool).reshape(sub.shape)
            sub[mask] = values
        else:
            assert self.positions is not None  # only _ALL atoms have no positions
            rows, cols = np.divmod(self.positions, sub.shape[1])
            sub[rows, cols] = values

    def remapped(self, lut: np.ndarray) -> Atom:
        """Return this atom with old and new values passed through ``lut``."""

        def remap(v: int | np.ndarray) -> int | np.ndarray:
            return np.take(lut, v) if isinstance(v, np.ndarray) else int(lut[v])

        return Atom(self.rect, self.kind, self.positions, remap(self.old), remap(self.new))


def encode_atom(rect: Rect, changes: np.ndarray, old: np.ndarray, new: int | np.ndarray) -> Atom:
    """Record a change in the smallest of the three position encodings.

    Parameters
    ----------
    rect : Rect
        Image box of ``changes`` (the tight bounding box of the changed pixels).
    changes : numpy.ndarray
        Boolean mask of the changed pixels inside ``rect``.
    old : numpy.ndarray
        ``uint8`` old values of the changed pixels, in row-major order.
    new : int or numpy.ndarray
        The value they all got, or their new ``uint8`` values in the same order.
    """
    n = old.size
    area = rect.height * rect.width
    positions: np.ndarray | None
    if n == area:
        kind, positions = _ALL, None
    else:
        index_size = 2 if area <= 1 << 16 else 4
        if n * index_size < (area + 7) // 8:
            kind = _INDEX
            positions = np.flatnonzero(changes).astype(np.uint16 if index_size == 2 else np.uint32)
        else:
            kind, positions = _BITS, np.packbits(changes)
    if isinstance(new, np.ndarray):
        new = _uniform(new)
    return Atom(rect, kind, positions, _uniform(old), new)


def _uniform(values: np.ndarray) -> int | np.ndarray:
    """Return the single value of ``values`` as an int if they are all equal, else the array."""
    first = values[0]
    if values.min() == first and values.max() == first:
        return int(first)
    return values


@dataclass(slots=True)
class Step:
    """One undo step: the applies of one drag (or one stand-alone apply), in order."""

    name: str
    serial: int
    atoms: list[Atom] = field(default_factory=list)
    rect: Rect = field(default_factory=lambda: Rect(0, 0, 0, 0))
    nbytes: int = _STEP_OVERHEAD
    lost: bool = False  # grew past the byte limit: its changes were not kept

    @property
    def has_changes(self) -> bool:
        """Whether the step changed any pixel (kept or lost)."""
        return self.lost or bool(self.atoms)

    def add(self, atom: Atom) -> int:
        """Append ``atom``; return the bytes it adds."""
        self.atoms.append(atom)
        self.rect = self.rect.union(atom.rect)
        added = atom.nbytes
        self.nbytes += added
        return added


# ------------------------------------------------------------------------ history


class History:
    """Undo and redo stacks of :class:`Step` s, bounded in bytes, with a saved mark.

    Parameters
    ----------
    limit_bytes : int
        Bound of :attr:`nbytes` (already validated by the editor).

    Notes
    -----
    :meth:`begin` / :meth:`end` nest by counting depth; only the outermost
    pair makes a step. Every state of the map reachable by undo and redo has a
    serial (that of the newest undo step, or a base serial when the undo stack
    is empty); the map is dirty when that serial differs from the one marked
    saved. The methods that change what the editor shows return whether its
    ``history_changed`` signal is due.
    """

    def __init__(self, limit_bytes: int) -> None:
        self._limit = limit_bytes
        self._undo: deque[Step] = deque()
        self._redo: list[Step] = []
        self._pending: Step | None = None
        self._depth = 0
        self._bytes = 0
        self._serial = 0  # last step serial handed out
        self._base_serial = 0  # state id when the undo stack is empty
        self._saved_serial = 0

    # ------------------------------------------------------------------ state

    @property
    def limit_bytes(self) -> int:
        """Bound of :attr:`nbytes`."""
        return self._limit

    @property
    def nbytes(self) -> int:
        """Bytes held by the undo and redo stacks, the open step included."""
        return self._bytes

    @property
    def in_step(self) -> bool:
        """Whether a step is open."""
        return self._depth > 0

    @property
    def can_undo(self) -> bool:
        """Whether :meth:`undo` would return a step (never while a step is open)."""
        return self._depth == 0 and bool(self._undo)

    @property
    def can_redo(self) -> bool:
        """Whether :meth:`redo` would return a step (never while a step is open)."""
        return self._depth == 0 and bool(self._redo)

    @property
    def undo_name(self) -> str | None:
        """Name of the step :meth:`undo` would return, or None."""
        return self._undo[-1].name if self.can_undo else None

    @property
    def redo_name(self) -> str | None:
        """Name of the step :meth:`redo` would return, or None."""
        return self._redo[-1].name if self.can_redo else None

    @property
    def dirty(self) -> bool:
        """Whether the map differs from the state marked by :meth:`mark_saved`."""
        if self._pending is not None and self._pending.has_changes:
            return True
        return self._state_serial() != self._saved_serial

    def mark_saved(self) -> None:
        """Record the current state as saved (:attr:`dirty` becomes False)."""
        if self._pending is not None and self._pending.has_changes:
            self._saved_serial = -1  # a mid-step state no undo or redo can reach again
        else:
            self._saved_serial = self._state_serial()

    def _state_serial(self) -> int:
        return self._undo[-1].serial if self._undo else self._base_serial

    def reset(self) -> None:
        """Forget everything, an open step included; the current state counts as saved."""
        self._undo.clear()
        self._redo.clear()
        self._pending = None
        self._depth = 0
        self._bytes = 0
        self._serial += 1
        self._base_serial = self._saved_serial = self._serial

    def clear(self) -> None:
        """Forget all undo and redo steps; the dirty state stays as it is."""
        if self._depth:
            raise RuntimeError("cannot clear the history while a step is open")
        dirty = self.dirty
        self._undo.clear()
        self._redo.clear()
        self._bytes = 0
        self._serial += 1
        self._base_serial = self._serial
        self._saved_serial = -1 if dirty else self._serial

    # ------------------------------------------------------------------ steps

    def begin(self, name: str) -> bool:
        """Open a step (or nest one level deeper); True when the outermost step opened."""
        self._depth += 1
        if self._depth == 1:
            self._serial += 1
            self._pending = Step(str(name), self._serial)
            return True
        return False

    def end(self) -> bool:
        """Close a level; at the outermost, record the step if it changed anything.

        Returns True when the outermost step closed.

        Raises
        ------
        RuntimeError
            If no step is open.
        """
        if self._depth == 0:
            raise RuntimeError("end_step() without begin_step()")
        self._depth -= 1
        if self._depth:
            return False
        step, self._pending = self._pending, None
        if step is None or not step.has_changes:
            # An empty step is not recorded (and its bytes were never counted).
            return True
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
        return True

    def record(self, atom: Atom, name: str) -> bool:
        """Add an atom to the open step, or make it a step of its own named ``name``.

        Returns True when undo/redo availability or the dirty state may have changed.
        """
        pending = self._pending
        first_change = pending is None or not pending.has_changes
        if first_change and self._redo:
            # A new edit after undo: the redo branch is gone.
            self._bytes -= sum(s.nbytes for s in self._redo)
            self._redo.clear()
        if pending is not None:
            if pending.lost:
                return False
            if first_change:
                self._bytes += pending.nbytes
            self._bytes += pending.add(atom)
            if self._bytes > self._limit:
                self._trim()
            return first_change
        self._serial += 1
        step = Step(str(name), self._serial)
        step.add(atom)
        self._bytes += step.nbytes
        self._commit(step)
        return True

    def _commit(self, step: Step) -> None:
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

    # ------------------------------------------------------------- undo / redo

    def undo(self) -> Step | None:
        """Move the newest step to the redo stack and return it (the caller writes its
        atoms' old values, newest first); None when there is nothing to undo."""
        if not self.can_undo:
            return None
        step = self._undo.pop()
        self._redo.append(step)
        return step

    def redo(self) -> Step | None:
        """Move the newest undone step back and return it (the caller writes its atoms'
        new values, oldest first); None when there is nothing to redo."""
        if not self.can_redo:
            return None
        step = self._redo.pop()
        self._undo.append(step)
        return step

    def remap(self, lut: np.ndarray) -> None:
        """Pass every recorded old and new value through a class-migration table."""
        steps = [*self._undo, *self._redo]
        if self._pending is not None:
            steps.append(self._pending)
        for s in steps:
            s.atoms = [a.remapped(lut) for a in s.atoms]
