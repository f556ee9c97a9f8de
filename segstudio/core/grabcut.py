"""Box → GrabCut, and refining its result with foreground and background strokes.

:func:`grabcut_start` runs GrabCut in a box and returns a :class:`GrabCut`:
the foreground found (a :class:`~segstudio.core.tools.Placed` mask, or None)
and what GrabCut needs to go on (its working image, label mask and colour
models). :func:`grabcut_refine` marks the pixels under the user's strokes as
sure foreground or sure background and runs GrabCut again from that mask
(``GC_INIT_WITH_MASK``), returning a new :class:`GrabCut`; the old one is
left as it was, so a refinement can run in a worker while the window keeps
the previous result.

GrabCut works on a crop of the box plus a margin of background around it,
never on the whole image; a crop larger than ``max_side`` on its long side is
downscaled for GrabCut and the mask scaled back up.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np

from segstudio.core.geometry import Rect
from segstudio.core.tools import Placed, box_rect

__all__ = ["GRABCUT_MIN_SIZE", "GrabCut", "grabcut_refine", "grabcut_region", "grabcut_start"]

_log = logging.getLogger(__name__)

GRABCUT_MIN_SIZE: Final[int] = 5
"""GrabCut boxes narrower or lower than this many pixels give None."""


@dataclass(frozen=True, eq=False)
class GrabCut:
    """A GrabCut result that can be refined.

    Attributes
    ----------
    box : Rect
        The box the user drew (image pixels).
    crop : Rect
        The part of the image GrabCut works on: the box and a margin.
    region : Placed or None
        The foreground, in image coordinates; None when GrabCut found none.
    image : numpy.ndarray
        The crop as GrabCut sees it (downscaled when large); not to be modified.
    mask : numpy.ndarray
        GrabCut's label mask over :attr:`image` (``cv2.GC_*`` values).
    models : tuple of numpy.ndarray
        GrabCut's background and foreground colour models.
    """

    box: Rect
    crop: Rect
    region: Placed | None
    image: np.ndarray
    mask: np.ndarray
    models: tuple[np.ndarray, np.ndarray]

    @property
    def scale(self) -> float:
        """Working size over crop size (1.0 when the crop was not downscaled)."""
        return self.image.shape[1] / self.crop.width

    @property
    def pixels(self) -> int:
        """How many pixels the foreground covers."""
        return 0 if self.region is None else int(np.count_nonzero(self.region.mask))


def _check_rgb(rgb: np.ndarray) -> None:
    if (
        not isinstance(rgb, np.ndarray)
        or rgb.ndim != 3
        or rgb.shape[2] != 3
        or rgb.dtype != np.uint8
    ):
        raise ValueError(
            "GrabCut needs an H x W x 3 uint8 image, got "
            f"{getattr(rgb, 'dtype', type(rgb))} {getattr(rgb, 'shape', '')}"
        )


def grabcut_start(
    rgb: np.ndarray,
    x0: float,
    y0: float,
    x1: float,
    y1: float,
    *,
    iterations: int = 3,
    margin: int | None = None,
    max_side: int = 1024,
) -> GrabCut | None:
    """Run GrabCut in a box: the object inside it, ready to be refined.

    Parameters
    ----------
    rgb : numpy.ndarray
        H x W x 3 ``uint8`` image (any channel order). Callers convert
        grayscale, RGBA or 16-bit images first.
    x0, y0, x1, y1 : float
        Two opposite corners of the box, any order (corners inclusive, as
        :func:`~segstudio.core.tools.box_region`).
    iterations : int, default 3
        GrabCut iterations.
    margin : int, optional
        Background pixels around the box; default ``max(8, longest side / 8)``.
    max_side : int, default 1024
        Longest side of the crop GrabCut works on.

    Returns
    -------
    GrabCut or None
        None when the box is smaller than :data:`GRABCUT_MIN_SIZE` pixels on a
        side or GrabCut fails (a box covering the whole image leaves no
        background to learn from). The result's ``region`` is None when
        GrabCut found no foreground.
    """
    _check_rgb(rgb)
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    if max_side < 16:
        raise ValueError(f"max_side must be >= 16, got {max_side}")
    h, w = rgb.shape[:2]
    box = box_rect((h, w), x0, y0, x1, y1)
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
    models = (np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64))
    try:
        cv2.grabCut(image, gc_mask, rect, *models, int(iterations), cv2.GC_INIT_WITH_RECT)
    except cv2.error as e:
        _log.info("GrabCut failed on box %s: %s", box, str(e).strip().splitlines()[-1])
        return None
    # the first result lies inside the box (the margin is only there to learn from)
    return GrabCut(box, crop, _region(gc_mask, crop, box), image, gc_mask, models)


def grabcut_refine(
    cut: GrabCut,
    strokes: Sequence[tuple[Placed, bool]],
    *,
    iterations: int = 2,
) -> GrabCut:
    """GrabCut again, with the pixels under ``strokes`` marked as sure foreground
    (``True``) or sure background (``False``); later strokes win where they overlap.

    Strokes outside the crop are ignored. ``cut`` is not changed: the result is
    a new :class:`GrabCut` whose ``region`` may reach outside the box (where a
    foreground stroke asked for it) but not outside the crop. When GrabCut
    cannot run (every pixel marked background, say) the result has no region.
    """
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    c = cut.crop
    marks = np.zeros((c.height, c.width), np.uint8)  # 1: foreground, 2: background
    for placed, foreground in strokes:
        p = placed.rect
        r = Rect(max(p.y0, c.y0), max(p.x0, c.x0), min(p.y1, c.y1), min(p.x1, c.x1))
        if r.is_empty:
            continue
        part = placed.mask[r.y0 - p.y0 : r.y1 - p.y0, r.x0 - p.x0 : r.x1 - p.x0]
        marks[r.y0 - c.y0 : r.y1 - c.y0, r.x0 - c.x0 : r.x1 - c.x0][part] = 1 if foreground else 2
    mask = cut.mask.copy()
    for value, label in ((1, cv2.GC_FGD), (2, cv2.GC_BGD)):
        marked = (marks == value).view(np.uint8)
        if marked.shape != mask.shape:  # downscaled: a thin stroke must not vanish
            size = (mask.shape[1], mask.shape[0])
            marked = cv2.resize(marked * 255, size, interpolation=cv2.INTER_AREA)
            marked = (marked > 0).view(np.uint8)
        mask[marked.view(bool)] = label
    models = (cut.models[0].copy(), cut.models[1].copy())
    try:
        rect = (0, 0, 0, 0)  # not read when starting from the mask
        cv2.grabCut(cut.image, mask, rect, *models, int(iterations), cv2.GC_INIT_WITH_MASK)
    except cv2.error as e:
        _log.info("GrabCut refinement failed: %s", str(e).strip().splitlines()[-1])
        return GrabCut(cut.box, cut.crop, None, cut.image, mask, models)
    return GrabCut(cut.box, cut.crop, _region(mask, cut.crop), cut.image, mask, models)


def _region(gc_mask: np.ndarray, crop: Rect, box: Rect | None = None) -> Placed | None:
    """The foreground of a GrabCut mask in image coordinates, cropped to its bounding box
    (and to ``box`` when given)."""
    fg = ((gc_mask == cv2.GC_FGD) | (gc_mask == cv2.GC_PR_FGD)).view(np.uint8)
    if fg.shape != (crop.height, crop.width):
        fg = cv2.resize(fg * 255, (crop.width, crop.height), interpolation=cv2.INTER_LINEAR)
        fg = (fg >= 128).view(np.uint8)
    full = fg.view(bool)
    if box is not None:
        keep = np.zeros(full.shape, bool)
        keep[box.y0 - crop.y0 : box.y1 - crop.y0, box.x0 - crop.x0 : box.x1 - crop.x0] = True
        full = full & keep
    rows = np.flatnonzero(full.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(full.any(axis=0))
    r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    return Placed(crop.y0 + r0, crop.x0 + c0, full[r0:r1, c0:c1].copy())


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
    """The foreground object inside a box, found by GrabCut (see :func:`grabcut_start`);
    None when the box is too small, GrabCut fails or finds no foreground."""
    cut = grabcut_start(
        rgb, x0, y0, x1, y1, iterations=iterations, margin=margin, max_side=max_side
    )
    return None if cut is None else cut.region
