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

import logging
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np

from segstudio.core.geometry import Rect

__all__ = [
    "GRABCUT_MIN_SIZE",
    "Placed",
    "box_region",
    "brush_segment",
    "flood_region",
    "grabcut_region",
    "polygon_region",
]

_log = logging.getLogger(__name__)

GRABCUT_MIN_SIZE: Final[int] = 5
"""GrabCut boxes narrower or lower than this many pixels give None."""

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


def _box(shape: tuple[int, int], x0: float, y0: float, x1: float, y1: float) -> Rect:
    """The clipped, inclusive pixel box between two corners rounded to the nearest pixel."""
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
    r = _box(shape, x0, y0, x1, y1)
    if r.is_empty:
        return None
    return Placed(r.y0, r.x0, np.ones((r.height, r.width), dtype=bool))


# ------------------------------------------------------------------------ GrabCut


def grabcut_region(
    rgb: np.ndarray,
    x0: float,
    y0: float,
    x1: float,
    y1: float,
    *,
    iterations: int = 3,
    margin: int | None = None,
    max_side: int = 1024,
) -> Placed | None:
    """The foreground object inside a box, found by GrabCut.

    GrabCut runs on a crop of the box plus a margin of background around it,
    never on the whole image; a crop larger than ``max_side`` on its long side
    is downscaled for GrabCut and the mask scaled back up. The result lies
    inside the box (corners inclusive, as :func:`box_region`).

    Parameters
    ----------
    rgb : numpy.ndarray
        H x W x 3 ``uint8`` image (any channel order). Callers convert
        grayscale, RGBA or 16-bit images first.
    x0, y0, x1, y1 : float
        Two opposite corners of the box, any order.
    iterations : int, default 3
        GrabCut iterations.
    margin : int, optional
        Background pixels around the box; default ``max(8, longest side / 8)``.
    max_side : int, default 1024
        Longest side of the crop GrabCut works on.

    Returns
    -------
    Placed or None
        The foreground, cropped to its bounding box. None when the box is
        smaller than :data:`GRABCUT_MIN_SIZE` pixels on a side, when GrabCut
        fails (for example a box covering the whole image leaves no background
        to learn from) or finds no foreground: the caller then falls back to
        the plain box or does nothing.
    """
    if (
        not isinstance(rgb, np.ndarray)
        or rgb.ndim != 3
        or rgb.shape[2] != 3
        or rgb.dtype != np.uint8
    ):
        raise ValueError(
            "grabcut_region needs an H x W x 3 uint8 image, got "
            f"{getattr(rgb, 'dtype', type(rgb))} {getattr(rgb, 'shape', '')}"
        )
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    if max_side < 16:
        raise ValueError(f"max_side must be >= 16, got {max_side}")
    h, w = rgb.shape[:2]
    box = _box((h, w), x0, y0, x1, y1)
    if box.height < GRABCUT_MIN_SIZE or box.width < GRABCUT_MIN_SIZE:
        return None
    m = max(8, max(box.height, box.width) // 8) if margin is None else max(0, int(margin))
    crop = Rect(box.y0 - m, box.x0 - m, box.y1 + m, box.x1 + m).clip(h, w)
    image = np.ascontiguousarray(rgb[crop.slices])
    # The box inside the crop, as cv2 wants it: (x, y, width, height).
    bx, by, bw, bh = box.x0 - crop.x0, box.y0 - crop.y0, box.width, box.height
    scale = min(1.0, max_side / max(crop.height, crop.width))
    if scale < 1.0:
        size = (max(1, round(crop.width * scale)), max(1, round(crop.height * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        sx, sy = size[0] / crop.width, size[1] / crop.height
        gx, gy = math.floor(bx * sx), math.floor(by * sy)
        gw = max(1, min(size[0] - gx, math.ceil((bx + bw) * sx) - gx))
        gh = max(1, min(size[1] - gy, math.ceil((by + bh) * sy) - gy))
        rect = (gx, gy, gw, gh)
    else:
        rect = (bx, by, bw, bh)
    gc_mask = np.zeros(image.shape[:2], dtype=np.uint8)
    bgd = np.zeros((1, 65), dtype=np.float64)
    fgd = np.zeros((1, 65), dtype=np.float64)
    try:
        cv2.grabCut(image, gc_mask, rect, bgd, fgd, int(iterations), cv2.GC_INIT_WITH_RECT)
    except cv2.error as e:
        _log.info("GrabCut failed on box %s: %s", box, str(e).strip().splitlines()[-1])
        return None
    fg = ((gc_mask == cv2.GC_FGD) | (gc_mask == cv2.GC_PR_FGD)).view(np.uint8)
    if scale < 1.0:
        fg = cv2.resize(fg * 255, (crop.width, crop.height), interpolation=cv2.INTER_LINEAR)
        fg = (fg >= 128).view(np.uint8)
    mask = fg[by : by + bh, bx : bx + bw].view(bool)
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    return Placed(box.y0 + r0, box.x0 + c0, mask[r0:r1, c0:c1].copy())
