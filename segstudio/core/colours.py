"""Colours for classes: CIELAB distances, and a new class's colour far from the others."""

from __future__ import annotations

import functools
from collections.abc import Iterable

import numpy as np

__all__ = ["distinct_color", "srgb_to_lab"]

Color = tuple[int, int, int]


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of sRGB colours: an (..., 3) array of 0..255 values."""
    c = np.asarray(rgb, np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    lab = np.empty_like(f)
    lab[..., 0] = 116 * f[..., 1] - 16
    lab[..., 1] = 500 * (f[..., 0] - f[..., 1])
    lab[..., 2] = 200 * (f[..., 1] - f[..., 2])
    return lab


@functools.cache
def _candidates() -> tuple[np.ndarray, np.ndarray]:
    """Colours a new class may get (a 16-level sRGB grid, neither near-black nor
    near-white: both read badly as an overlay) and their CIELAB coordinates."""
    levels = np.linspace(0, 255, 16).round()
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 3)
    lab = srgb_to_lab(grid)
    keep = (lab[:, 0] > 30) & (lab[:, 0] < 92)
    return grid[keep].astype(np.int64), lab[keep]


def distinct_color(taken: Iterable[Color]) -> Color:
    """The colour farthest from every colour in ``taken`` (the classes' colours and the
    unlabeled one): the candidate whose nearest taken colour is farthest in CIELAB, so a
    new class never looks like an existing one. Deterministic."""
    grid, lab = _candidates()
    used = np.array([tuple(c) for c in taken], np.float64).reshape(-1, 3)
    if used.size == 0:
        return (230, 25, 75)  # a clear red: nothing to keep apart from
    d = np.linalg.norm(lab[:, None, :] - srgb_to_lab(used)[None, :, :], axis=-1).min(axis=1)
    r, g, b = (int(v) for v in grid[int(np.argmax(d))])
    return (r, g, b)
