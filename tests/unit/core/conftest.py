"""Helpers shared by the core tests: the naive reference of an edit, and bounding boxes."""

from __future__ import annotations

import numpy as np

from segstudio.core.geometry import Rect
from segstudio.core.labelset import UNLABELED


def reference_apply(
    labels: np.ndarray,
    y0: int,
    x0: int,
    mask: np.ndarray,
    value: int | np.ndarray,
    only_unlabeled: bool = False,
) -> np.ndarray:
    """What apply() must do, computed on full-image arrays (the naive way)."""
    h, w = labels.shape
    full_mask = np.zeros((h, w), dtype=bool)
    full_value = np.zeros((h, w), dtype=np.uint8)
    mh, mw = mask.shape
    for i in range(mh):
        for j in range(mw):
            y, x = y0 + i, x0 + j
            if 0 <= y < h and 0 <= x < w:
                full_mask[y, x] = mask[i, j]
                full_value[y, x] = value[i, j] if isinstance(value, np.ndarray) else value
    if only_unlabeled:
        full_mask &= labels == UNLABELED
    return np.where(full_mask, full_value, labels)


def bbox_of(diff: np.ndarray) -> Rect | None:
    ys, xs = np.nonzero(diff)
    if ys.size == 0:
        return None
    return Rect(int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1)


def covers(outer: Rect, inner: Rect | None) -> bool:
    return inner is None or outer.union(inner) == outer


def disk(r: int) -> np.ndarray:
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return yy * yy + xx * xx <= r * r
