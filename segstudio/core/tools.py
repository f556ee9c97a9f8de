"""Geometry of the labelling tools: each turns a gesture into a placed boolean mask.

The functions here only compute *where* a tool acts; the caller passes the
result to :meth:`segstudio.core.edit.LabelEditor.apply` with the class to
paint. Every result is a :class:`Placed` mask, already clipped to the image,
whose array covers only the tool's bounding box, or None when the tool covers
no pixel of the image.

Coordinates
-----------
Points are ``(x, y)`` floats in image pixel coordinates where pixel
``labels[i, j]`` has its *centre* at ``(x=j, y=i)`` and covers
``[j - 0.5, j + 0.5) x [i - 0.5, i + 0.5)`` (OpenCV's convention). A Qt scene
position over an image item drawn at the origin at scale 1 converts as
``(sx - 0.5, sy - 0.5)``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np

from segstudio.core.geometry import Rect

__all__ = [
    "DEFAULT_FILL_TOLERANCE",
    "Placed",
    "box_rect",
    "box_region",
    "brush_segment",
    "fill_region",
    "flood_region",
    "polygon_region",
]


DEFAULT_FILL_TOLERANCE: Final[int] = 12
"""How far (per channel, 0..255) a pixel's colour may be from the seed's and still fill."""

_POLY_SHIFT: Final[int] = 8
"""Fractional bits of polygon vertices handed to cv2.fillPoly (1/256 pixel)."""

_flood_local = threading.local()
"""Per-thread reusable floodFill mask (see :func:`flood_region`)."""


@dataclass(frozen=True, eq=False)
class Placed:
    """A boolean mask placed in an image: ``mask[0, 0]`` is pixel ``(y0, x0)``.

    Attributes
    ----------
    y0, x0 : int
        Image row and column of the mask's first pixel.
    mask : numpy.ndarray
        2-D ``bool`` array; True where the tool acts.
    """

    y0: int
    x0: int
    mask: np.ndarray

    @property
    def rect(self) -> Rect:
        """The image rectangle the mask covers."""
        h, w = self.mask.shape
        return Rect(self.y0, self.x0, self.y0 + h, self.x0 + w)

    def full(self, shape: tuple[int, int]) -> np.ndarray:
        """Return the mask drawn into a new all-False array of ``shape`` (for tests, export)."""
        out = np.zeros(shape, dtype=bool)
        r = self.rect.clip(*shape)
        if not r.is_empty:
            out[r.slices] = self.mask[
                r.y0 - self.y0 : r.y1 - self.y0, r.x0 - self.x0 : r.x1 - self.x0
            ]
        return out


def _shape2(shape: Sequence[int]) -> tuple[int, int]:
    if len(shape) < 2:
        raise ValueError(f"shape must be (height, width), got {tuple(shape)!r}")
    h, w = int(shape[0]), int(shape[1])
    if h < 0 or w < 0:
        raise ValueError(f"shape must not be negative, got {(h, w)}")
    return h, w


def _finite_point(p: Sequence[float], what: str) -> tuple[float, float]:
    if len(p) != 2:
        raise ValueError(f"{what} must be an (x, y) pair, got {p!r}")
    x, y = float(p[0]), float(p[1])
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ValueError(f"{what} must be finite, got {p!r}")
    return x, y


def _placed(y0: int, x0: int, mask: np.ndarray) -> Placed | None:
    return Placed(y0, x0, mask) if mask.any() else None


# --------------------------------------------------------------------------- brush


def brush_segment(
    shape: tuple[int, int],
    p0: tuple[float, float],
    p1: tuple[float, float],
    radius: float,
) -> Placed | None:
    """The pixels a round brush covers when swept from ``p0`` to ``p1``.

    A pixel is covered when its centre lies within ``radius`` of the segment
    ``p0``-``p1`` (distance <= radius). For a click (``p0 == p1``) that is
    exactly the disk ``(j - x)**2 + (i - y)**2 <= radius**2``; consecutive
    mouse-move segments of a drag join without gaps. Only the segment's
    bounding box (clipped to the image) is computed.

    Parameters
    ----------
    shape : tuple of int
        ``(height, width)`` of the image.
    p0, p1 : tuple of float
        Start and end ``(x, y)`` in image pixel coordinates.
    radius : float
        Brush radius in pixels, >= 0. Below 0.5 a point between pixel centres
        may cover nothing; from ``sqrt(2) / 2`` on, every stroke is 4-connected.

    Returns
    -------
    Placed or None
        The covered pixels, or None if none lies inside the image.
    """
    h, w = _shape2(shape)
    xa, ya = _finite_point(p0, "p0")
    xb, yb = _finite_point(p1, "p1")
    r = float(radius)
    if not math.isfinite(r) or r < 0:
        raise ValueError(f"radius must be a finite number >= 0, got {radius!r}")
    bx0 = max(0, math.ceil(min(xa, xb) - r))
    by0 = max(0, math.ceil(min(ya, yb) - r))
    bx1 = min(w, math.floor(max(xa, xb) + r) + 1)
    by1 = min(h, math.floor(max(ya, yb) + r) + 1)
    if bx1 <= bx0 or by1 <= by0:
        return None
    # Coordinates relative to p0 keep the arithmetic small and exact enough.
    px = np.arange(bx0, bx1, dtype=np.float64) - xa
    py = (np.arange(by0, by1, dtype=np.float64) - ya)[:, None]
    dx, dy = xb - xa, yb - ya
    len2 = dx * dx + dy * dy
    r2 = r * r
    if len2 == 0.0:
        mask = px * px + py * py <= r2
    else:
        # Distance to the segment: project on it, clamp to the ends.
        t = (px * (dx / len2) + py * (dy / len2)).clip(0.0, 1.0)
        ex = px - t * dx
        ey = py - t * dy
        # The projection rounds: let centres on the edge (to 1e-9) count, as a click's do.
        mask = ex * ex + ey * ey <= r2 + 1e-9 * (1.0 + r2)
    return _placed(by0, bx0, mask)


# --------------------------------------------------------------------------- fill


def flood_region(labels: np.ndarray, x: int, y: int, *, connectivity: int = 4) -> Placed | None:
    """The connected region of pixels that hold the same value as ``labels[y, x]``.

    Parameters
    ----------
    labels : numpy.ndarray
        ``uint8`` H x W label map (not modified).
    x, y : int
        Seed pixel (column, row). A seed outside the image gives None.
    connectivity : {4, 8}
        Whether diagonal neighbours connect.

    Returns
    -------
    Placed or None
        The region, cropped to its bounding box.

    Notes
    -----
    cv2.floodFill needs an (H+2) x (W+2) mask; one such buffer is kept per
    thread and image shape and only the filled box is cleared after each fill,
    so a fill costs time in proportion to the region after the first one on an
    image size. A read-only ``labels`` is copied (cv2 wants a writable image
    even in mask-only mode).
    """
    if not isinstance(labels, np.ndarray) or labels.ndim != 2 or labels.dtype != np.uint8:
        raise ValueError(
            f"labels must be a 2-D uint8 array, got {getattr(labels, 'dtype', type(labels))} "
            f"{getattr(labels, 'shape', '')}"
        )
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity!r}")
    h, w = labels.shape
    x, y = int(x), int(y)
    if not (0 <= x < w and 0 <= y < h):
        return None
    image = labels if labels.flags.writeable and labels.flags.c_contiguous else labels.copy()
    buf = _flood_buffer(h, w)
    flags = connectivity | cv2.FLOODFILL_MASK_ONLY | (1 << 8)
    try:
        _, _, _, (rx, ry, rw, rh) = cv2.floodFill(image, buf, (x, y), 0, 0, 0, flags)
    except cv2.error:
        _flood_local.buffer = None  # state unknown: never reuse it
        raise
    inner = buf[1 + ry : 1 + ry + rh, 1 + rx : 1 + rx + rw]
    mask = inner.astype(bool)
    inner[...] = 0  # leave the buffer clean for the next fill
    return _placed(ry, rx, mask)


def fill_region(
    source: np.ndarray,
    labels: np.ndarray,
    x: int,
    y: int,
    *,
    tolerance: int = DEFAULT_FILL_TOLERANCE,
    connectivity: int = 4,
) -> Placed | None:
    """What a fill at ``(x, y)`` covers: the region of ``source`` like the seed, in its label.

    A pixel belongs when it connects to the seed through pixels that

    - are like the seed in ``source``: every channel within ``tolerance`` of
      the seed pixel's (cv2.floodFill's fixed range, so a gradient does not
      creep on from neighbour to neighbour), and
    - hold the seed's label in ``labels``: an unlabelled seed fills unlabelled
      pixels only, a labelled seed only pixels of its own class (so a click
      never runs over what a person has labelled).

    Parameters
    ----------
    source : numpy.ndarray
        What is compared: an ``H x W x 3`` ``uint8`` image (fill by colour) or
        an ``H x W`` ``uint8`` map such as a prediction (fill by class: use
        ``tolerance=0``).
    labels : numpy.ndarray
        The ``H x W`` ``uint8`` label map (not modified).
    x, y : int
        The seed pixel (column, row). Outside the image: None.
    tolerance : int, default :data:`DEFAULT_FILL_TOLERANCE`
        Largest difference per channel, 0..255.
    connectivity : {4, 8}
        Whether diagonal neighbours connect.

    Returns
    -------
    Placed or None
        The region cropped to its bounding box (it always holds the seed).

    Notes
    -----
    Cost: one pass over the label map to build floodFill's mask, then time in
    proportion to the region (a 4000 x 3000 image: about 15 ms for a region of
    half the image on one core).
    """
    if not isinstance(labels, np.ndarray) or labels.ndim != 2 or labels.dtype != np.uint8:
        raise ValueError(
            f"labels must be a 2-D uint8 array, got {getattr(labels, 'dtype', type(labels))} "
            f"{getattr(labels, 'shape', '')}"
        )
    if (
        not isinstance(source, np.ndarray)
        or source.dtype != np.uint8
        or source.shape[:2] != labels.shape
        or not (source.ndim == 2 or (source.ndim == 3 and source.shape[2] == 3))
    ):
        raise ValueError(
            f"source must be a uint8 H x W or H x W x 3 array of the labels' size {labels.shape}, "
            f"got {getattr(source, 'dtype', type(source))} {getattr(source, 'shape', '')}"
        )
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity!r}")
    t = int(tolerance)
    if not 0 <= t <= 255:
        raise ValueError(f"tolerance must be 0..255, got {tolerance!r}")
    h, w = labels.shape
    x, y = int(x), int(y)
    if not (0 <= x < w and 0 <= y < h):
        return None
    image = source if source.flags.writeable and source.flags.c_contiguous else source.copy()
    # floodFill never enters a non-zero mask pixel: block every pixel of another label
    buf = np.empty((h + 2, w + 2), dtype=np.uint8)
    buf[0, :] = buf[-1, :] = buf[:, 0] = buf[:, -1] = 1
    np.not_equal(labels, labels[y, x], out=buf[1:-1, 1:-1].view(bool))
    diff = (t, t, t) if image.ndim == 3 else t
    flags = connectivity | cv2.FLOODFILL_MASK_ONLY | cv2.FLOODFILL_FIXED_RANGE | (2 << 8)
    _, _, _, (rx, ry, rw, rh) = cv2.floodFill(image, buf, (x, y), 0, diff, diff, flags)
    mask = buf[1 + ry : 1 + ry + rh, 1 + rx : 1 + rx + rw] == 2
    return _placed(ry, rx, mask)


def _flood_buffer(h: int, w: int) -> np.ndarray:
    """This thread's zeroed (h+2) x (w+2) floodFill mask (its 1-pixel border may be set)."""
    buf: np.ndarray | None = getattr(_flood_local, "buffer", None)
    if buf is None or buf.shape != (h + 2, w + 2):
        _flood_local.buffer = None  # free the old one before allocating
        buf = np.zeros((h + 2, w + 2), dtype=np.uint8)
        _flood_local.buffer = buf
    return buf


# ------------------------------------------------------------------ polygon, box


def polygon_region(shape: tuple[int, int], points: Sequence[tuple[float, float]]) -> Placed | None:
    """The pixels inside a polygon (cv2.fillPoly on the polygon's bounding box).

    Parameters
    ----------
    shape : tuple of int
        ``(height, width)`` of the image.
    points : sequence of (x, y)
        Vertices in order; the polygon closes itself. Sub-pixel positions are
        kept to 1/256 pixel. Pixels whose centres lie on the outline count as
        inside (as cv2.fillPoly draws them).

    Returns
    -------
    Placed or None
        None for fewer than 3 points or a polygon outside the image.
    """
    h, w = _shape2(shape)
    if len(points) < 3:
        return None
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"points must be (x, y) pairs, got an array of shape {pts.shape}")
    if not np.isfinite(pts).all():
        raise ValueError("polygon points must be finite")
    lo = np.floor(pts.min(axis=0))
    hi = np.ceil(pts.max(axis=0))
    bx0, by0 = max(0, int(lo[0])), max(0, int(lo[1]))
    bx1, by1 = min(w, int(hi[0]) + 1), min(h, int(hi[1]) + 1)
    if bx1 <= bx0 or by1 <= by0:
        return None
    canvas = np.zeros((by1 - by0, bx1 - bx0), dtype=np.uint8)
    scale = 1 << _POLY_SHIFT
    fixed = np.round((pts - (bx0, by0)) * scale).astype(np.int32)
    cv2.fillPoly(canvas, [fixed.reshape(-1, 1, 2)], 1, lineType=cv2.LINE_8, shift=_POLY_SHIFT)
    return _placed(by0, bx0, canvas.view(bool))


def box_rect(shape: tuple[int, int], x0: float, y0: float, x1: float, y1: float) -> Rect:
    """The clipped pixel box between two corners, each rounded to the nearest pixel, both
    inside (GrabCut's box too)."""
    h, w = _shape2(shape)
    vals = [float(v) for v in (x0, y0, x1, y1)]
    if not all(math.isfinite(v) for v in vals):
        raise ValueError(f"box corners must be finite, got {(x0, y0, x1, y1)!r}")
    cx0, cy0, cx1, cy1 = (math.floor(v + 0.5) for v in vals)
    return Rect(min(cy0, cy1), min(cx0, cx1), max(cy0, cy1) + 1, max(cx0, cx1) + 1).clip(h, w)


def box_region(shape: tuple[int, int], x0: float, y0: float, x1: float, y1: float) -> Placed | None:
    """A filled rectangle between two corners given in any order.

    Each corner is rounded to the nearest pixel; both corner pixels are inside.

    Returns
    -------
    Placed or None
        None when the box lies outside the image.
    """
    r = box_rect(shape, x0, y0, x1, y1)
    if r.is_empty:
        return None
    return Placed(r.y0, r.x0, np.ones((r.height, r.width), dtype=bool))
