"""Pixels per class in the open image, kept current while the user paints.

The label map is counted in tiles: each tile keeps its own 256 counts, so an
edit recounts only the tiles its changed rectangle touches and the totals
move by the difference. Counting runs on the GUI thread in small slices from
a timer (a budget of pixels per slice), never inside the edit itself: a
12000 x 9000 image is counted in a few seconds of 5 ms slices when it opens,
and a brush dab costs the recount of a tile or two at the next tick. No
thread reads the live map while the brush writes it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from segstudio.core.edit import LabelEditor

#: Side of a counting tile, in pixels.
TILE = 256
#: Pixels recounted per timer tick (about 5 ms of work: the brush stays smooth meanwhile).
BUDGET_PX = 1 << 20
#: Milliseconds between ticks while tiles wait to be counted.
TICK_MS = 20


class TileCounts:
    """Per-class pixel counts of an H x W uint8 map, per tile, with totals.

    Tiles touched by :meth:`mark` are recounted by :meth:`work`; :attr:`total`
    is exact whenever :attr:`pending` is False.
    """

    def __init__(self, shape: tuple[int, int]) -> None:
        self.shape = shape
        h, w = shape
        self.rows, self.cols = math.ceil(h / TILE), math.ceil(w / TILE)
        n = self.rows * self.cols
        self.tiles = np.zeros((n, 256), np.int64)
        self.total = np.zeros(256, np.int64)
        self.dirty = np.ones(n, bool)  # nothing counted yet

    @property
    def pending(self) -> bool:
        return bool(self.dirty.any())

    def mark(self, y0: int, x0: int, y1: int, x1: int) -> None:
        """The pixels in rows y0..y1-1 and columns x0..x1-1 changed."""
        h, w = self.shape
        y0, x0, y1, x1 = max(0, y0), max(0, x0), min(h, y1), min(w, x1)
        if y1 <= y0 or x1 <= x0:
            return
        ty = np.arange(y0 // TILE, (y1 - 1) // TILE + 1)
        tx = np.arange(x0 // TILE, (x1 - 1) // TILE + 1)
        self.dirty[(ty[:, None] * self.cols + tx[None, :]).ravel()] = True

    def work(self, labels: np.ndarray, budget_px: int = BUDGET_PX) -> bool:
        """Recount dirty tiles of ``labels`` until about ``budget_px`` pixels were read;
        True when nothing is left to count."""
        done = 0
        for index in np.flatnonzero(self.dirty):
            r, c = divmod(int(index), self.cols)
            tile = labels[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE]
            counts = np.bincount(tile.ravel(), minlength=256)
            self.total += counts - self.tiles[index]
            self.tiles[index] = counts
            self.dirty[index] = False
            done += tile.size
            if done >= budget_px:
                break
        return not self.pending


class ClassCounter(QObject):
    """Counts the open image's pixels per class and reports the totals.

    Signals
    -------
    countsChanged(counts)
        A 256-entry int64 array of pixels per value (255: unlabeled), or None while
        no image is open or it is being counted for the first time.
    """

    countsChanged = Signal(object)  # noqa: N815 - Qt naming

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._editor: LabelEditor | None = None
        self._counts: TileCounts | None = None
        self._last: np.ndarray | None = None
        self._timer = QTimer(self, interval=TICK_MS)
        self._timer.timeout.connect(self._tick)

    @property
    def counts(self) -> np.ndarray | None:
        """The last totals reported (None: not known)."""
        return self._last

    def attach(self, editor: LabelEditor | None) -> None:
        """Count ``editor``'s labels from now on (None: no image open)."""
        if self._editor is not None:
            self._editor.changed.disconnect(self._changed)
        self._editor = editor
        self._counts = None if editor is None else TileCounts(editor.shape)
        self._last = None
        self.countsChanged.emit(None)
        if editor is not None:
            editor.changed.connect(self._changed)
            self._timer.start()
        else:
            self._timer.stop()

    def _changed(self, rect: Any) -> None:
        editor, counts = self._editor, self._counts
        if editor is None or counts is None:
            return
        if editor.shape != counts.shape:  # another map of another size (set_labels)
            self._counts = TileCounts(editor.shape)
        else:
            counts.mark(rect.y0, rect.x0, rect.y1, rect.x1)
        if not self._timer.isActive():
            self._timer.start()

    def _tick(self) -> None:
        editor, counts = self._editor, self._counts
        if editor is None or counts is None:
            self._timer.stop()
            return
        if not counts.work(editor.labels):
            return
        self._timer.stop()
        if self._last is None or not np.array_equal(self._last, counts.total):
            self._last = counts.total.copy()
            self.countsChanged.emit(self._last)

    def finish(self) -> np.ndarray | None:
        """Count what is left now (tests, and a caller that needs exact numbers at once)."""
        editor, counts = self._editor, self._counts
        if editor is None or counts is None:
            return None
        counts.work(editor.labels, budget_px=editor.labels.size + 1)
        self._tick()
        return self._last
