"""Predictions, and predicting an image tile by tile without seams.

:func:`stitch_tiles` visits the tiles of an image in raster order and blends
their softmax probabilities with a linear ramp across each overlap; only two
carries are kept between tiles (the right overlap of the previous tile, and the
bottom overlap of the previous row of tiles), so memory is ``O(tile^2 + overlap
* width)`` however large the image. :func:`tile_windows` gives the tiles in
that order. :class:`~segstudio.model.predictor.Predictor` runs the network.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from segstudio.core.errors import SegStudioError
from segstudio.core.labelset import UNLABELED

__all__ = ["Prediction", "RowSource", "TileFn", "stitch_tiles", "tile_windows"]


class RowSource(Protocol):
    """An image read a band of rows at a time (e.g. :class:`segstudio.io.images.TiffBands`)."""

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(height, width, channels)``."""
        ...

    def rows(self, y0: int, y1: int) -> np.ndarray:
        """Rows ``[y0, y1)``, ``(y1 - y0) x width x channels`` uint8."""
        ...


@dataclass(frozen=True)
class Prediction:
    """A predicted class map (uint8 HxW) and its confidence (float16 HxW, 0..1;
    None when the caller asked for none)."""

    labels: np.ndarray
    confidence: np.ndarray | None

    def sure(self, threshold: float) -> np.ndarray:
        """A copy of the labels, unlabeled (255) where the confidence is below
        ``threshold``: the answers replay learns from."""
        if self.confidence is None:
            raise SegStudioError("this prediction was made without its confidence")
        labels = self.labels.copy()
        labels[self.confidence.astype(np.float32) < threshold] = UNLABELED
        return labels


def _split(length: int, tile: int, overlap: int, align: int = 1) -> list[tuple[int, int]]:
    """Windows of at most ``tile`` covering ``[0, length)``, each overlapping the
    next by at least ``overlap``, all starting at multiples of ``align``.

    Aligned starts keep every tile's pooling grid on the whole image's grid,
    so a tile sees the same pooling windows as the whole image would. With
    ``overlap`` and ``align`` at most ``tile / 4`` a window never reaches past
    the one after its neighbour, so every pixel lies in at most two windows per
    axis, which is what :func:`stitch_tiles` relies on. The last window is what
    remains, at least ``tile - step`` (>= ``overlap``) pixels plus one.
    """
    if length <= tile:
        return [(0, length)]
    step = (tile - overlap) // align * align
    windows = []
    start = 0
    while start + tile < length:
        windows.append((start, start + tile))
        start += step
    windows.append((start, length))
    return windows


def tile_windows(
    height: int, width: int, tile: int, overlap: int, align: int = 1
) -> list[tuple[int, int, int, int]]:
    """The tiles ``(y0, y1, x0, x1)`` of an image, in the order :func:`stitch_tiles` takes them."""
    cols = _split(width, tile, overlap, align)
    return [(y0, y1, x0, x1) for y0, y1 in _split(height, tile, overlap, align) for x0, x1 in cols]


def _ramp(size: int, lead: int, trail: int) -> np.ndarray:
    """1-D blending weights: rise over ``lead`` pixels, fall over ``trail``."""
    w = np.ones(size, np.float32)
    if lead > 0:
        w[:lead] = np.minimum(w[:lead], (np.arange(lead, dtype=np.float32) + 0.5) / lead)
    if trail > 0:
        w[size - trail :] = np.minimum(
            w[size - trail :], (np.arange(trail, 0, -1, dtype=np.float32) - 0.5) / trail
        )
    return w


TileFn = Callable[[int, int, int, int], torch.Tensor]


def _ramp_t(size: int, lead: int, trail: int) -> torch.Tensor:
    return torch.from_numpy(_ramp(size, lead, trail))


def _finish(
    sums: torch.Tensor, num_classes: int, labels: torch.Tensor, conf: torch.Tensor | None
) -> None:
    """Class and confidence (unless None) of pixels whose weighted sums are complete."""
    probs = sums[:num_classes]
    top, idx = probs.max(dim=0)
    labels.copy_(idx)
    if conf is not None:
        conf.copy_(top / probs.sum(dim=0))


def _weighted(
    logits: torch.Tensor, wy: torch.Tensor, wx: torch.Tensor, ys: slice, xs: slice
) -> torch.Tensor:
    """Probabilities times weight, and the weight, of a strip ``[:, ys, xs]`` of a tile."""
    wgt = wy[ys, None] * wx[None, xs]
    probs = torch.softmax(logits[:, ys, xs], dim=0).mul_(wgt)
    return torch.cat((probs, wgt[None]), dim=0)


def _direct(logits: torch.Tensor, labels: torch.Tensor, conf: torch.Tensor | None) -> None:
    """Class and confidence (unless None) of pixels that only one tile covers, from its logits."""
    top, idx = logits.max(dim=0)
    labels.copy_(idx)
    if conf is not None:  # top softmax probability = 1 / sum(exp(logit - max logit))
        conf.copy_(torch.exp(logits - top).sum(dim=0).reciprocal())


def stitch_tiles(
    height: int,
    width: int,
    num_classes: int,
    tile: int,
    overlap: int,
    predict_tile: TileFn,
    align: int = 1,
    confidence: bool = True,
) -> Prediction:
    """Predict an image tile by tile and blend the tiles' probabilities.

    ``predict_tile(y0, y1, x0, x1)`` returns float32 logits, a tensor of shape
    ``(num_classes, y1 - y0, x1 - x0)``. A pixel that one tile covers takes
    that tile's class and top softmax probability; a pixel in an overlap takes
    the weight-normalised sum of the covering tiles' probabilities, the
    weights ramping linearly across the overlap, so neighbouring tiles fade
    into each other. Only the overlap strips are blended (and kept between
    tiles: the right strip of the previous tile, the bottom strip of the
    previous row of tiles); all of it runs in torch, on every thread. Without
    ``confidence`` the prediction's confidence is None (about 3 % faster).
    """
    if not 0 <= overlap * 4 <= tile or not 1 <= align * 4 <= tile:
        raise ValueError(f"overlap ({overlap}) and align ({align}) must be <= tile / 4 ({tile})")
    labels = np.empty((height, width), np.uint8)
    conf = np.empty((height, width), np.float16) if confidence else None
    lab_t = torch.from_numpy(labels)
    conf_t = None if conf is None else torch.from_numpy(conf)

    def out(ys: slice, xs: slice) -> tuple[torch.Tensor, torch.Tensor | None]:
        return lab_t[ys, xs], None if conf_t is None else conf_t[ys, xs]

    rows, cols = _split(height, tile, overlap, align), _split(width, tile, overlap, align)
    for axis in (rows, cols):
        for (_, a1), (b0, _) in zip(axis, axis[2:], strict=False):
            assert b0 >= a1, "a window overlaps the one after its neighbour"
    c = num_classes
    top: torch.Tensor | None = None  # weighted sums of the rows shared with the last tile row
    top_y0 = 0
    for r, (y0, y1) in enumerate(rows):
        next_y0 = rows[r + 1][0] if r + 1 < len(rows) else y1
        prev_y1 = rows[r - 1][1] if r > 0 else y0
        h, ly, ty = y1 - y0, prev_y1 - y0, y1 - next_y0  # rows shared above and below
        wy = _ramp_t(h, ly, ty)
        new_top = torch.from_numpy(np.zeros((c + 1, ty, width), np.float32)) if ty > 0 else None
        left: torch.Tensor | None = None  # weighted sums of the columns shared with the last tile
        for k, (x0, x1) in enumerate(cols):
            next_x0 = cols[k + 1][0] if k + 1 < len(cols) else x1
            prev_x1 = cols[k - 1][1] if k > 0 else x0
            w, lx, tx = x1 - x0, prev_x1 - x0, x1 - next_x0
            wx = _ramp_t(w, lx, tx)
            logits = predict_tile(y0, y1, x0, x1).float()

            _direct(
                logits[:, ly : h - ty, lx : w - tx],
                *out(slice(y0 + ly, next_y0), slice(x0 + lx, next_x0)),
            )
            handed: list[torch.Tensor] = []  # the right strip, top to bottom, for the next tile
            if ly > 0:  # rows the previous tile row covered too
                band = _weighted(logits, wy, wx, slice(0, ly), slice(0, w))
                if left is not None:  # already holds the top carry for its columns
                    band[:, :, :lx] += left[:, :ly]
                assert top is not None
                band[:, :, lx:] += top[:, y0 - top_y0 : prev_y1 - top_y0, prev_x1:x1]
                _finish(
                    band[:, :, : w - tx],
                    c,
                    *out(slice(y0, prev_y1), slice(x0, next_x0)),
                )
                handed.append(band[:, :, w - tx :])
            if lx > 0 and h - ty > ly:  # columns the previous tile covered too
                assert left is not None
                band = (
                    _weighted(logits, wy, wx, slice(ly, h - ty), slice(0, lx))
                    + left[:, ly : h - ty]
                )
                _finish(
                    band,
                    c,
                    *out(slice(y0 + ly, next_y0), slice(x0, prev_x1)),
                )
            if tx > 0:
                handed.append(_weighted(logits, wy, wx, slice(ly, h - ty), slice(w - tx, w)))
            if ty > 0:  # rows the next tile row covers too: handed on
                assert new_top is not None
                band = _weighted(logits, wy, wx, slice(h - ty, h), slice(0, w))
                if left is not None:
                    band[:, :, :lx] += left[:, h - ty :]
                new_top[:, :, x0:next_x0] = band[:, :, : w - tx]
                handed.append(band[:, :, w - tx :])
            left = torch.cat(handed, dim=1) if tx > 0 else None
        top, top_y0 = new_top, next_y0
    return Prediction(labels, conf)
