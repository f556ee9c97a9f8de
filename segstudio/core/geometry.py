"""Pixel rectangles: the boxes edits, undo steps and repaints are measured in.

A :class:`Rect` is half-open, in (row, column) order, so that
``array[rect.slices]`` is exactly its pixels. The edit path returns one for the
pixels an edit changed, the undo history keeps one per step, and the canvas
repaints only that box. The tool geometry that turns gestures into masks
(brush, fill, polygon, box, GrabCut) lives in :mod:`segstudio.core.tools`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Rect"]


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
