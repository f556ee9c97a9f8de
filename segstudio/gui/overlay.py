"""Canvas items that draw uint8 maps through a colour table.

A label map, a prediction or a confidence map is drawn by looking each pixel
up in a 256-entry table of premultiplied ARGB colours whose alpha carries the
layer's opacity. Opacity, hiding a class or highlighting one changes the
table, never the pixels. Only the exposed part of the map is converted at
each paint, so after an edit Qt repaints just the dirty rectangle, and when
the view is zoomed out the map is sampled with a stride first, so a paint
costs about as many lookups as there are screen pixels, whatever the image
size (volumina's lesson: never touch what is not on screen).
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from segstudio.core.labelset import UNLABELED


def premultiplied_table(colors: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """A 256-entry uint32 table of premultiplied ARGB from RGB colours and alphas (0..1)."""
    colors = np.asarray(colors, np.float32)
    a = np.clip(np.asarray(alpha, np.float32), 0.0, 1.0)
    rgb = np.rint(colors * a[:, None]).astype(np.uint32)
    a8 = np.rint(a * 255).astype(np.uint32)
    return (a8 << 24) | (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]


def palette_table(
    palette: np.ndarray, opacity: float, hidden: frozenset[int] = frozenset()
) -> np.ndarray:
    """The colour table of a mask layer: class colours at ``opacity``, unlabeled and
    hidden classes transparent."""
    alpha = np.full(256, opacity, np.float32)
    alpha[UNLABELED] = 0.0
    if hidden:
        alpha[list(hidden)] = 0.0
    return premultiplied_table(palette, alpha)


def heat_table(opacity: float) -> np.ndarray:
    """Confidence heat map: low confidence glows orange-red, high confidence is clear."""
    c = np.arange(256, dtype=np.float32) / 255.0
    doubt = 1.0 - c
    colors = np.stack([np.full(256, 255.0), 200 * c + 40, np.full(256, 30.0)], axis=1)
    return premultiplied_table(colors, opacity * np.sqrt(doubt))


def outline(values: np.ndarray) -> np.ndarray:
    """Keep only pixels that differ from a 4-neighbour; the rest become unlabeled."""
    edge = np.zeros(values.shape, bool)
    edge[1:, :] |= values[1:, :] != values[:-1, :]
    edge[:-1, :] |= values[:-1, :] != values[1:, :]
    edge[:, 1:] |= values[:, 1:] != values[:, :-1]
    edge[:, :-1] |= values[:, :-1] != values[:, 1:]
    return np.where(edge, values, np.uint8(UNLABELED))


class MapItem(QGraphicsItem):
    """Draws a uint8 H x W map through a 256-entry colour table.

    The map is held by reference: an editor changes it in place and calls
    :meth:`update_rect` with the changed region.
    """

    def __init__(self, values: np.ndarray | None = None, table: np.ndarray | None = None) -> None:
        super().__init__()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self._values: np.ndarray | None = None
        self._table = table if table is not None else np.zeros(256, np.uint32)
        self._outline = False
        self._shape = (0, 0)
        self.set_values(values)

    # -- state ---------------------------------------------------------------------------

    @property
    def values(self) -> np.ndarray | None:
        return self._values

    def set_values(self, values: np.ndarray | None) -> None:
        self.prepareGeometryChange()
        self._values = values
        self._shape = (0, 0) if values is None else values.shape[:2]
        self.update()

    def set_table(self, table: np.ndarray) -> None:
        self._table = np.ascontiguousarray(table, np.uint32)
        self.update()

    def set_outline(self, on: bool) -> None:
        self._outline = on
        self.update()

    def update_rect(self, y0: int, x0: int, y1: int, x1: int) -> None:
        # a margin: an outline changes around an edit too, a stride's worth when zoomed out
        m = 1
        if self._outline and self.scene() is not None and self.scene().views():
            scale = self.scene().views()[0].transform().m11()
            m = max(1, math.ceil(2.0 / max(scale, 1e-6)))
        self.update(QRectF(x0 - m, y0 - m, x1 - x0 + 2 * m, y1 - y0 + 2 * m))

    # -- QGraphicsItem -------------------------------------------------------------------

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt API
        h, w = self._shape
        return QRectF(0, 0, w, h)

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionGraphicsItem,
        widget: QWidget | None = None,
    ) -> None:
        values = self._values
        if values is None or values.size == 0:
            return
        h, w = values.shape
        r = option.exposedRect.intersected(self.boundingRect())
        if r.isEmpty():
            return
        x0, y0 = max(0, math.floor(r.left())), max(0, math.floor(r.top()))
        x1, y1 = min(w, math.ceil(r.right())), min(h, math.ceil(r.bottom()))
        if x1 <= x0 or y1 <= y0:
            return
        scale = max(painter.worldTransform().m11(), 1e-6)
        step = 1 if scale >= 0.5 else 2 ** math.floor(math.log2(1.0 / scale))
        if step > 1:  # align to the stride so neighbouring paints sample the same pixels
            x0, y0 = x0 - x0 % step, y0 - y0 % step
        if self._outline:
            # outline needs the neighbours of the exposed block
            ya, xa = max(0, y0 - step), max(0, x0 - step)
            block = outline(values[ya : y1 + step : step, xa : x1 + step : step])
            block = block[(y0 - ya) // step :, (x0 - xa) // step :]
            block = block[: len(range(y0, y1, step)), : len(range(x0, x1, step))]
        else:
            block = values[y0:y1:step, x0:x1:step]
        argb = np.ascontiguousarray(self._table[block])
        bh, bw = argb.shape
        image = QImage(argb.data, bw, bh, bw * 4, QImage.Format.Format_ARGB32_Premultiplied)
        painter.drawImage(QRectF(x0, y0, bw * step, bh * step), image)
