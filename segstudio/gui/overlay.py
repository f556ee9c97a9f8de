"""Canvas items that draw uint8 maps through a colour table.

A label map, a prediction or a confidence map is drawn by looking each pixel
up in a 256-entry table of premultiplied ARGB colours whose alpha carries the
layer's opacity. Opacity, hiding a class or highlighting one changes the
table, never the pixels. Only the exposed part of the map is converted at
each paint, so after an edit Qt repaints just the dirty rectangle, and when
the view is zoomed out the map is sampled with a stride first, so a paint
costs about as many lookups as there are screen pixels, whatever the image
size (volumina's lesson: never touch what is not on screen).

Labels and predictions must never be mistaken for each other, so they are
drawn in two styles: labels solid, with their region borders in the full
class colour (an *edge table*); the prediction hatched with diagonal stripes
fixed in screen pixels (a strong table for the stripes, a faint one between
them), and only where nobody labelled (the labels *mask* it). Both styles
are still colour tables and the same exposed-block conversion.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from PySide6.QtCore import QLineF, QPointF, QRect, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QImage, QPainter, QPen, QTransform
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from segstudio.core.labelset import UNLABELED

#: Screen pixels from one hatch stripe to the next (a power of two), and a stripe's width.
HATCH_PERIOD, HATCH_WIDTH = 8, 3
#: How much of its colour a prediction keeps (the rest goes to its grey): predictions
#: look paler than labels even where the stripes are not visible (tiny regions).
PREDICTION_SATURATION = 0.75
#: Between the stripes the prediction keeps this share of its opacity.
HATCH_GAP_ALPHA = 0.35
#: The brush outline is never drawn smaller than this radius on screen (pixels); a
#: brush smaller than that gets a crosshair too, CROSS_PX long.
MIN_CURSOR_PX, CROSS_PX = 5.0, 6.0


def premultiplied_table(colors: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """A 256-entry uint32 table of premultiplied ARGB from RGB colours and alphas (0..1)."""
    colors = np.asarray(colors, np.float32)
    a = np.clip(np.asarray(alpha, np.float32), 0.0, 1.0)
    rgb = np.rint(colors * a[:, None]).astype(np.uint32)
    a8 = np.rint(a * 255).astype(np.uint32)
    return (a8 << 24) | (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]


def _alphas(opacity: float, hidden: frozenset[int]) -> np.ndarray:
    alpha = np.full(256, opacity, np.float32)
    alpha[UNLABELED] = 0.0
    if hidden:
        alpha[list(hidden)] = 0.0
    return alpha


def palette_table(
    palette: np.ndarray, opacity: float, hidden: frozenset[int] = frozenset()
) -> np.ndarray:
    """The colour table of a mask layer: class colours at ``opacity``, unlabeled and
    hidden classes transparent."""
    return premultiplied_table(palette, _alphas(opacity, hidden))


def edge_table(
    palette: np.ndarray, opacity: float, hidden: frozenset[int] = frozenset()
) -> np.ndarray:
    """The labels' region borders: the class colour, clearly more opaque than the fill
    (a layer at opacity 0 still shows nothing)."""
    strong = 0.0 if opacity <= 0 else min(1.0, 0.45 + opacity)
    return premultiplied_table(palette, _alphas(strong, hidden))


def desaturated(palette: np.ndarray, keep: float = PREDICTION_SATURATION) -> np.ndarray:
    """``palette`` moved toward the grey of the same luminance, keeping ``keep`` of it."""
    colors = np.asarray(palette, np.float32)
    grey = colors @ np.array([0.299, 0.587, 0.114], np.float32)
    return grey[:, None] + keep * (colors - grey[:, None])


def hatch_tables(
    palette: np.ndarray, opacity: float, hidden: frozenset[int] = frozenset()
) -> tuple[np.ndarray, np.ndarray]:
    """The prediction's two tables: (stripes, between the stripes), paler than labels."""
    pale = desaturated(palette)
    alpha = _alphas(opacity, hidden)
    return premultiplied_table(pale, alpha), premultiplied_table(pale, alpha * HATCH_GAP_ALPHA)


def heat_table(opacity: float) -> np.ndarray:
    """Confidence heat map: low confidence glows orange-red, high confidence is clear."""
    c = np.arange(256, dtype=np.float32) / 255.0
    doubt = 1.0 - c
    colors = np.stack([np.full(256, 255.0), 200 * c + 40, np.full(256, 30.0)], axis=1)
    return premultiplied_table(colors, opacity * np.sqrt(doubt))


def edges(values: np.ndarray) -> np.ndarray:
    """Pixels that differ from a 4-neighbour (both sides of every border)."""
    edge = np.zeros(values.shape, bool)
    vert = values[1:, :] != values[:-1, :]
    horiz = values[:, 1:] != values[:, :-1]
    edge[1:, :] |= vert
    edge[:-1, :] |= vert
    edge[:, 1:] |= horiz
    edge[:, :-1] |= horiz
    return edge


def outline(values: np.ndarray) -> np.ndarray:
    """Keep only pixels that differ from a 4-neighbour; the rest become unlabeled."""
    return np.where(edges(values), values, np.uint8(UNLABELED))


@functools.cache
def _hatch_brush() -> QBrush:
    """A tile of diagonal stripes, opaque on the stripes and clear between them."""
    n = HATCH_PERIOD
    y, x = np.mgrid[0:n, 0:n]
    tile = np.where((x + y) % n < HATCH_WIDTH, np.uint32(0xFFFFFFFF), np.uint32(0))
    tile = np.ascontiguousarray(tile, np.uint32)
    image = QImage(tile.data, n, n, 4 * n, QImage.Format.Format_ARGB32_Premultiplied).copy()
    return QBrush(image)


def over(top: np.ndarray, under: np.ndarray) -> np.ndarray:
    """Premultiplied ARGB tables: ``top`` composited over ``under``, entry by entry."""
    top, under = np.asarray(top, np.uint32), np.asarray(under, np.uint32)
    keep = 255 - (top >> 24)
    out = np.zeros(top.shape, np.uint32)
    for shift in (24, 16, 8, 0):
        t, u = (top >> shift) & 0xFF, (under >> shift) & 0xFF
        out |= np.minimum(t + (u * keep + 127) // 255, 255) << shift
    return out


def _stripes(world: QTransform, x0: int, y0: int, step: int, bh: int, bw: int) -> np.ndarray | None:
    """Which pixels of a block (image pixels x0 + j * step, y0 + i * step) fall on a hatch
    stripe on screen; None when an image pixel covers more than a screen pixel (or the
    view is rotated), where the stripes cannot follow the image's pixels."""
    sx, sy = world.m11(), world.m22()
    if world.isRotating() or not 0 < sx * step <= 1.0 or not 0 < sy * step <= 1.0:
        return None
    ox, oy = round(world.dx()), round(world.dy())  # stripes are fixed to the image origin
    centre = 0.5 * step
    cols = np.floor(world.dx() + (x0 + np.arange(bw) * step + centre) * sx).astype(np.int64)
    rows = np.floor(world.dy() + (y0 + np.arange(bh) * step + centre) * sy).astype(np.int64)
    cx = ((cols - ox) % HATCH_PERIOD).astype(np.uint8)
    cy = ((rows - oy) % HATCH_PERIOD).astype(np.uint8)
    phase = np.add.outer(cy, cx)
    phase &= np.uint8(HATCH_PERIOD - 1)  # a power of two
    return phase < HATCH_WIDTH


def _qimage(argb: np.ndarray) -> QImage:
    bh, bw = argb.shape
    return QImage(argb.data, bw, bh, bw * 4, QImage.Format.Format_ARGB32_Premultiplied)


class MapItem(QGraphicsItem):
    """Draws a uint8 H x W map through a 256-entry colour table.

    The map is held by reference: an editor changes it in place and calls
    :meth:`update_rect` with the changed region. Styles, each a colour table:
    an *edge table* draws the region borders (labels); *outline* draws only
    the borders; a *faint table* makes the item hatched (prediction); a *mask*
    item hides this one wherever that one has a value.
    """

    def __init__(self, values: np.ndarray | None = None, table: np.ndarray | None = None) -> None:
        super().__init__()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self._values: np.ndarray | None = None
        self._table = table if table is not None else np.zeros(256, np.uint32)
        self._edge_table: np.ndarray | None = None
        self._pair: np.ndarray | None = None  # [table, edge table]: one lookup for both
        self._faint: np.ndarray | None = None
        self._hatch: np.ndarray | None = None  # [faint, stripes over faint]: one lookup
        self._mask: MapItem | None = None
        self._outline = False
        self._shape = (0, 0)
        self.set_values(values)

    # -- state ---------------------------------------------------------------------------

    @property
    def values(self) -> np.ndarray | None:
        return self._values

    @property
    def hatched(self) -> bool:
        return self._faint is not None

    def set_values(self, values: np.ndarray | None) -> None:
        self.prepareGeometryChange()
        self._values = values
        self._shape = (0, 0) if values is None else values.shape[:2]
        self.update()

    def set_table(
        self,
        table: np.ndarray,
        *,
        edge: np.ndarray | None = None,
        faint: np.ndarray | None = None,
    ) -> None:
        """The colours; ``edge`` for region borders, ``faint`` between hatch stripes."""
        self._table = np.ascontiguousarray(table, np.uint32)
        self._edge_table = None if edge is None else np.ascontiguousarray(edge, np.uint32)
        self._pair = None if edge is None else np.concatenate([self._table, self._edge_table])
        self._faint = None if faint is None else np.ascontiguousarray(faint, np.uint32)
        self._hatch = None
        if self._faint is not None:
            self._hatch = np.concatenate([self._faint, over(self._table, self._faint)])
        self.update()

    def set_outline(self, on: bool) -> None:
        self._outline = on
        self.update()

    def set_mask(self, item: MapItem | None) -> None:
        """Draw nothing where ``item`` (while shown) has a value other than unlabeled."""
        self._mask = item
        self.update()

    def masked_by(self) -> MapItem | None:
        return self._mask

    def update_rect(self, y0: int, x0: int, y1: int, x1: int) -> None:
        # a margin: borders change around an edit too, a stride's worth when zoomed out
        m = 1
        if (self._outline or self._pair is not None) and self.scene() is not None:
            views = self.scene().views()
            if views:
                scale = views[0].transform().m11()
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
        block = values[y0:y1:step, x0:x1:step]
        bh, bw = block.shape
        edge = None
        if self._outline or self._pair is not None:
            # borders need the neighbours of the exposed block
            ya, xa = max(0, y0 - step), max(0, x0 - step)
            edge = edges(values[ya : y1 + step : step, xa : x1 + step : step])
            edge = edge[(y0 - ya) // step :, (x0 - xa) // step :][:bh, :bw]
        if self._outline and edge is not None:
            block = np.where(edge, block, np.uint8(UNLABELED))
        mask = self._mask
        over_it = None if mask is None or not mask.isVisible() else mask.values
        hidden = None  # where the mask item has a value: nothing drawn
        if over_it is not None and over_it.shape == values.shape:
            hidden = over_it[y0:y1:step, x0:x1:step] != UNLABELED
        target = QRectF(x0, y0, bw * step, bh * step)
        stripes = None
        if self._hatch is not None:
            stripes = _stripes(painter.worldTransform(), x0, y0, step, bh, bw)
        if stripes is not None:  # an image pixel is at most a screen pixel: hatch here
            table, extra = self._hatch, stripes
        elif self._outline:
            table, extra = (self._edge_table if self._edge_table is not None else self._table), None
        elif self._pair is not None:
            table, extra = self._pair, edge
        else:
            table, extra = self._table, None
        if extra is None:
            index = block if hidden is None else np.where(hidden, np.uint8(UNLABELED), block)
        else:  # a 512-entry table: the second half where ``extra`` is set
            index = block.astype(np.uint16) | (extra.view(np.uint8).astype(np.uint16) << 8)
            if hidden is not None:
                index[hidden] = UNLABELED
        argb = np.ascontiguousarray(table[index])
        if self._faint is None or stripes is not None:
            painter.drawImage(target, _qimage(argb))
            return
        # zoomed in: stripes finer than the image's pixels; Qt draws them at screen pixels
        if hidden is not None:
            block = np.where(hidden, np.uint8(UNLABELED), block)
        painter.drawImage(target, _qimage(np.ascontiguousarray(self._faint[block])))
        self._draw_stripes(painter, target, _qimage(argb))

    def _draw_stripes(self, painter: QPainter, target: QRectF, image: QImage) -> None:
        """Draw ``image`` over ``target`` through diagonal stripes fixed in screen pixels
        (and to the image's origin, so that repainted pieces and scrolled ones line up)."""
        world = painter.worldTransform()
        device = painter.device()
        area = QRect(0, 0, device.width(), device.height())
        dev = world.mapRect(target).toAlignedRect().intersected(area)
        if dev.isEmpty():
            return
        dpr = max(1.0, float(device.devicePixelRatioF()))
        layer = QImage(
            math.ceil(dev.width() * dpr),
            math.ceil(dev.height() * dpr),
            QImage.Format.Format_ARGB32_Premultiplied,
        )
        layer.setDevicePixelRatio(dpr)
        layer.fill(Qt.GlobalColor.transparent)
        p = QPainter(layer)
        p.setTransform(world * QTransform.fromTranslate(-dev.x(), -dev.y()))
        p.drawImage(target, image)
        p.resetTransform()
        p.setCompositionMode(QPainter.CompositionMode.CompositionMode_DestinationIn)
        origin = world.map(QPointF(0, 0))
        p.setBrushOrigin(QPointF(round(origin.x()) - dev.x(), round(origin.y()) - dev.y()))
        p.fillRect(QRectF(0, 0, dev.width(), dev.height()), _hatch_brush())
        p.end()
        painter.save()
        painter.resetTransform()
        painter.drawImage(dev.topLeft(), layer)
        painter.restore()


class BrushCursor(QGraphicsItem):
    """The brush outline, visible on any background and at any zoom.

    A two-tone dashed circle (white dashes on a black line) of the brush's
    radius, never smaller than :data:`MIN_CURSOR_PX` on screen; a brush
    smaller than that gets a two-tone crosshair too, so the point it paints
    stays visible at low zoom.
    """

    def __init__(self) -> None:
        super().__init__()
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self._radius = 8.0
        self._scale = 1.0

    @property
    def radius(self) -> float:
        return self._radius

    def set_brush(self, center: QPointF, radius: float) -> None:
        """Centre the outline on ``center`` (scene coordinates) with the brush's radius."""
        if radius != self._radius:
            self.prepareGeometryChange()
            self._radius = radius
            self.update()
        self.setPos(center)

    def set_view_scale(self, scale: float) -> None:
        """The view's zoom (screen pixels per image pixel): the minimum size depends on it."""
        if scale > 0 and scale != self._scale:
            self.prepareGeometryChange()
            self._scale = scale
            self.update()

    def tiny(self, scale: float | None = None) -> bool:
        """Whether the brush is smaller on screen than the smallest outline drawn."""
        return self._radius * (scale or self._scale) < MIN_CURSOR_PX

    def shown_radius(self, scale: float | None = None) -> float:
        """The outline's radius in image pixels: the brush's, or the minimum on screen."""
        return max(self._radius, MIN_CURSOR_PX / (scale or self._scale))

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt API
        r = self.shown_radius() + (CROSS_PX + 3.0) / self._scale
        return QRectF(-r, -r, 2 * r, 2 * r)

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionGraphicsItem,
        widget: QWidget | None = None,
    ) -> None:
        scale = abs(painter.worldTransform().m11()) or self._scale
        r = self.shown_radius(scale)
        rect = QRectF(-r, -r, 2 * r, 2 * r)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        lines: list[QLineF] = []
        if self.tiny(scale):
            a, b = r + 1.0 / scale, r + (1.0 + CROSS_PX) / scale
            lines = [
                QLineF(a, 0, b, 0),
                QLineF(-a, 0, -b, 0),
                QLineF(0, a, 0, b),
                QLineF(0, -a, 0, -b),
            ]
        painter.setPen(cosmetic_pen(QColor(0, 0, 0), 1.0))
        painter.drawEllipse(rect)
        if lines:
            painter.setPen(cosmetic_pen(QColor(0, 0, 0), 3.0))
            painter.drawLines(lines)
            painter.setPen(cosmetic_pen(QColor(255, 255, 255), 1.0))
            painter.drawLines(lines)
        dashes = cosmetic_pen(QColor(255, 255, 255), 1.0, Qt.PenStyle.CustomDashLine)
        dashes.setDashPattern([4.0, 4.0])
        painter.setPen(dashes)
        painter.drawEllipse(rect)
        painter.restore()


def cosmetic_pen(color: QColor, width: float, style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> QPen:
    """A pen of the same width on screen at every zoom."""
    pen = QPen(QBrush(color), width, style)
    pen.setCosmetic(True)
    return pen


def legend_image(table: np.ndarray, width: int, height: int, background: QColor) -> QImage:
    """A horizontal bar of a colour table (index 0 on the left) drawn over ``background``:
    the confidence layer's legend."""
    t = np.asarray(table, np.uint32)
    alpha = (t >> 24).astype(np.float32) / 255.0
    bg = (background.red(), background.green(), background.blue())
    out = np.full(256, 0xFF000000, np.uint32)
    for shift, under in zip((16, 8, 0), bg, strict=True):  # premultiplied "over"
        src = ((t >> shift) & 0xFF).astype(np.float32)
        out |= np.rint(src + under * (1.0 - alpha)).astype(np.uint32) << shift
    cols = np.linspace(0, 255, max(width, 1)).round().astype(np.intp)
    argb = np.ascontiguousarray(np.broadcast_to(out[cols], (max(height, 1), cols.size)))
    return _qimage(argb).copy()
