"""The canvas: the image and its layers in a zoomable view, and the tools' mouse handling.

The canvas turns mouse gestures into image coordinates and tool gestures;
it never edits labels itself. Tools report through typed signals
(``stroke``, ``click``, ``polygon``, ``box``), which the window routes to
the one edit path (:class:`segstudio.core.edit.LabelEditor`).
"""

from __future__ import annotations

import enum

import numpy as np
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainterPath,
    QPixmap,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QGraphicsPathItem,
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsView,
    QWidget,
)

from segstudio.gui.overlay import BrushCursor, MapItem, cosmetic_pen


class Tool(enum.Enum):
    """The canvas tools; the value is the label shown to the user."""

    BRUSH = "Brush"
    ERASER = "Eraser"
    FILL = "Fill"
    POLYGON = "Polygon"
    GRABCUT = "Box → GrabCut"
    EYEDROPPER = "Eyedropper"
    ACCEPT = "Accept prediction brush"
    PAN = "Pan"


BRUSH_TOOLS = frozenset({Tool.BRUSH, Tool.ERASER, Tool.ACCEPT})
ZOOM_STEP = 1.25
MIN_SCALE, MAX_SCALE = 1 / 64, 64.0


class Layer(enum.Enum):
    IMAGE = "Image"
    LABELS = "Labels"
    PREDICTION = "Prediction"
    CONFIDENCE = "Confidence"


class Canvas(QGraphicsView):
    """Zoom (wheel, fit, 1:1), pan (space-drag, middle button), tools and a brush outline.

    Signals
    -------
    cursorMoved(x, y)
        Image pixel under the cursor, or (-1, -1) outside the image.
    strokeStarted(), strokeMoved(x0, y0, x1, y1), strokeFinished()
        A brush-type drag, segment by segment, in pixel-centre coordinates
        (pixel ``labels[i, j]`` is centred on ``(x=j, y=i)``, as in OpenCV).
    clicked(x, y)
        A click with the fill or eyedropper tool.
    polygonFinished(points)
        A closed polygon: a list of (x, y) in pixel-centre coordinates.
    boxFinished(x0, y0, x1, y1)
        A dragged box for GrabCut: its corner pixels (both inside).
    zoomChanged(scale)
    """

    cursorMoved = Signal(int, int)  # noqa: N815 - Qt naming
    strokeStarted = Signal()  # noqa: N815
    strokeMoved = Signal(float, float, float, float)  # noqa: N815
    strokeFinished = Signal()  # noqa: N815
    clicked = Signal(int, int)
    polygonFinished = Signal(list)  # noqa: N815
    boxFinished = Signal(int, int, int, int)  # noqa: N815
    zoomChanged = Signal(float)  # noqa: N815
    imageChanged = Signal()  # noqa: N815 - [part a] set_image showed another image (minimap)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("canvas")
        self.setScene(QGraphicsScene(self))
        self.setBackgroundBrush(QColor(38, 38, 42))
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.MinimalViewportUpdate)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontSavePainterState, True)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)

        self.image_item = QGraphicsPixmapItem()
        self.image_item.setTransformationMode(Qt.TransformationMode.FastTransformation)
        self.image_item.setZValue(0)
        self.prediction_item = MapItem()
        self.prediction_item.setZValue(1)
        self.labels_item = MapItem()
        self.labels_item.setZValue(2)
        self.confidence_item = MapItem()
        self.confidence_item.setZValue(3)
        self.layers = {
            Layer.IMAGE: self.image_item,
            Layer.LABELS: self.labels_item,
            Layer.PREDICTION: self.prediction_item,
            Layer.CONFIDENCE: self.confidence_item,
        }
        self.prediction_item.set_mask(self.labels_item)  # the prediction shows where no label
        self.cursor_item = BrushCursor()
        self.cursor_item.setZValue(10)
        self.cursor_item.setVisible(False)
        self.preview_item = QGraphicsPathItem()
        self.preview_item.setPen(cosmetic_pen(QColor(255, 230, 0), 1.5))
        self.preview_item.setZValue(11)
        self.box_item = QGraphicsRectItem()
        self.box_item.setPen(cosmetic_pen(QColor(0, 230, 255), 1.5, Qt.PenStyle.DashLine))
        self.box_item.setZValue(11)
        self.box_item.setVisible(False)
        for item in (
            self.image_item,
            self.prediction_item,
            self.labels_item,
            self.confidence_item,
            self.cursor_item,
            self.preview_item,
            self.box_item,
        ):
            self.scene().addItem(item)

        self.tool = Tool.BRUSH
        # [part c] GrabCut refining: while set (by the editing controller), drags with the
        # GrabCut tool are strokes, not a new box; press_modifiers says if Shift was held
        self.grabcut_strokes = False
        self.press_modifiers = Qt.KeyboardModifier.NoModifier
        self.brush_radius = 8.0
        self._size = (0, 0)  # (height, width)
        self._space = False
        self._pan_from: QPointF | None = None
        self._stroke_last: QPointF | None = None
        self._polygon: list[QPointF] = []
        self._box_from: QPointF | None = None

    # -- content -------------------------------------------------------------------------

    def set_image(self, rgb: np.ndarray | None) -> None:
        """Show an H x W x 3 uint8 image (None clears the canvas)."""
        self.cancel_gesture()
        if rgb is None:
            self.image_item.setPixmap(QPixmap())
            self._size = (0, 0)
        else:
            h, w = rgb.shape[:2]
            rgb = np.ascontiguousarray(rgb)
            qimg = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888)
            self.image_item.setPixmap(QPixmap.fromImage(qimg))
            self._size = (h, w)
        self.scene().setSceneRect(QRectF(0, 0, self._size[1], self._size[0]))
        self.imageChanged.emit()  # [part a]

    @property
    def image_size(self) -> tuple[int, int]:
        return self._size

    def set_labels(self, labels: np.ndarray | None) -> None:
        """Draw ``labels`` (held by reference: report edits with :meth:`update_labels`)."""
        self.labels_item.set_values(labels)

    def update_labels(self, y0: int, x0: int, y1: int, x1: int) -> None:
        """Repaint the labels in a changed rectangle."""
        self.labels_item.update_rect(y0, x0, y1, x1)

    def set_prediction(self, labels: np.ndarray | None, confidence: np.ndarray | None) -> None:
        self.prediction_item.set_values(labels)
        self.confidence_item.set_values(confidence)

    def set_tables(
        self,
        labels: np.ndarray,
        prediction: np.ndarray,
        confidence: np.ndarray,
        *,
        labels_edge: np.ndarray | None = None,
        prediction_faint: np.ndarray | None = None,
    ) -> None:
        """The colour tables of the three map layers (opacity and hidden classes live there);
        ``labels_edge`` draws the labels' region borders, ``prediction_faint`` hatches the
        prediction (``prediction`` on the stripes, the faint table between them)."""
        self.labels_item.set_table(labels, edge=labels_edge)
        self.prediction_item.set_table(prediction, faint=prediction_faint)
        self.confidence_item.set_table(confidence)

    def set_prediction_masked(self, on: bool) -> None:
        """Show the prediction only where nobody labelled (True), or everywhere."""
        self.prediction_item.set_mask(self.labels_item if on else None)

    def style_layer(self, layer: Layer, visible: bool, opacity: float, outline: bool) -> None:
        """Show or hide a layer; the image's opacity, the mask layers' outline view
        (the map layers' opacity is in their colour table)."""
        item = self.layers[layer]
        item.setVisible(visible)
        if layer is Layer.IMAGE:
            item.setOpacity(opacity)
        elif layer in (Layer.LABELS, Layer.PREDICTION):
            item.set_outline(outline)

    def set_tool(self, tool: Tool) -> None:
        self.cancel_gesture()
        self.tool = tool
        self._update_cursor_item(self.mapToScene(self.mapFromGlobal(self.cursor().pos())))
        self.viewport().setCursor(
            Qt.CursorShape.OpenHandCursor if tool is Tool.PAN else Qt.CursorShape.CrossCursor
        )

    def set_brush_radius(self, radius: float) -> None:
        self.brush_radius = float(max(0.5, min(radius, 1000.0)))
        self._update_cursor_item(self.mapToScene(self.mapFromGlobal(self.cursor().pos())))

    def cancel_gesture(self) -> None:
        if self._stroke_last is not None:
            self._stroke_last = None
            self.strokeFinished.emit()
        self._polygon = []
        self.preview_item.setPath(QPainterPath())
        self._box_from = None
        self.box_item.setVisible(False)

    # -- zoom ----------------------------------------------------------------------------

    @property
    def scale_factor(self) -> float:
        return self.transform().m11()

    def fit(self) -> None:
        if self._size == (0, 0):
            return
        self.fitInView(self.scene().sceneRect(), Qt.AspectRatioMode.KeepAspectRatio)
        self.cursor_item.set_view_scale(self.scale_factor)
        self.zoomChanged.emit(self.scale_factor)

    def zoom_to(self, scale: float) -> None:
        scale = min(MAX_SCALE, max(MIN_SCALE, scale))
        self.setTransform(self.transform().fromScale(scale, scale))
        self.cursor_item.set_view_scale(scale)
        self.zoomChanged.emit(scale)

    def zoom_by(self, factor: float) -> None:
        self.zoom_to(self.scale_factor * factor)

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 - Qt API
        delta = event.angleDelta().y()
        if delta:
            self.zoom_by(ZOOM_STEP ** (delta / 120.0))
        event.accept()

    # -- mouse and keys ------------------------------------------------------------------

    def _inside(self, p: QPointF) -> bool:
        h, w = self._size
        return 0 <= p.x() < w and 0 <= p.y() < h

    def _clamped(self, p: QPointF) -> QPointF:
        h, w = self._size
        return QPointF(min(max(p.x(), 0.0), w - 1e-3), min(max(p.y(), 0.0), h - 1e-3))

    def _update_cursor_item(self, p: QPointF) -> None:
        show = self._brushing() and self._size != (0, 0)
        self.cursor_item.setVisible(show)
        if show:
            self.cursor_item.set_brush(p, self.brush_radius)

    def _brushing(self) -> bool:
        """Whether a drag is a brush stroke (the brush tools; GrabCut while refining)."""
        return self.tool in BRUSH_TOOLS or (self.tool is Tool.GRABCUT and self.grabcut_strokes)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        button = event.button()
        self.press_modifiers = event.modifiers()
        panning = self._space or self.tool is Tool.PAN
        if button == Qt.MouseButton.MiddleButton or (
            button == Qt.MouseButton.LeftButton and panning
        ):
            self._pan_from = event.position()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        if self._size == (0, 0):
            return
        p = self.mapToScene(event.position().toPoint())
        if button == Qt.MouseButton.RightButton and self.tool is Tool.POLYGON and self._polygon:
            self._finish_polygon()
            return
        if button != Qt.MouseButton.LeftButton:
            return
        if self._brushing():
            if not self._inside(p):
                return
            if self._stroke_last is not None:  # a stroke whose release we never saw
                self.strokeFinished.emit()
            self._stroke_last = p
            self.strokeStarted.emit()
            self._emit_segment(p, p)
        elif self.tool in (Tool.FILL, Tool.EYEDROPPER):
            if self._inside(p):
                self.clicked.emit(int(p.x()), int(p.y()))
        elif self.tool is Tool.POLYGON:
            self._polygon.append(self._clamped(p))
            self._update_polygon_preview(p)
        elif self.tool is Tool.GRABCUT:
            self._box_from = self._clamped(p)
            self.box_item.setRect(QRectF(self._box_from, self._box_from))
            self.box_item.setVisible(True)
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        if self._pan_from is not None:
            d = event.position() - self._pan_from
            self._pan_from = event.position()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - int(d.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - int(d.y()))
            event.accept()
            return
        p = self.mapToScene(event.position().toPoint())
        self._update_cursor_item(p)
        if self._inside(p):
            self.cursorMoved.emit(int(p.x()), int(p.y()))
        else:
            self.cursorMoved.emit(-1, -1)
        if self._stroke_last is not None:
            if not event.buttons() & Qt.MouseButton.LeftButton:
                # the release went elsewhere (a modal dialog took it): end the stroke
                self._stroke_last = None
                self.strokeFinished.emit()
            else:
                a = self._stroke_last
                self._stroke_last = p
                self._emit_segment(a, p)
        elif self._polygon:
            self._update_polygon_preview(p)
        elif self._box_from is not None:
            self.box_item.setRect(QRectF(self._box_from, self._clamped(p)).normalized())
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        if self._pan_from is not None and event.button() in (
            Qt.MouseButton.MiddleButton,
            Qt.MouseButton.LeftButton,
        ):
            self._pan_from = None
            self.viewport().setCursor(
                Qt.CursorShape.OpenHandCursor
                if self.tool is Tool.PAN or self._space
                else Qt.CursorShape.CrossCursor
            )
            return
        if event.button() != Qt.MouseButton.LeftButton:
            return
        if self._stroke_last is not None:
            self._stroke_last = None
            self.strokeFinished.emit()
        elif self._box_from is not None:
            r = self.box_item.rect().normalized()
            self._box_from = None
            self.box_item.setVisible(False)
            if r.width() >= 2 and r.height() >= 2:
                self.boxFinished.emit(int(r.left()), int(r.top()), int(r.right()), int(r.bottom()))
        event.accept()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        if self.tool is Tool.POLYGON and len(self._polygon) >= 3:
            self._finish_polygon()
            event.accept()
            return
        super().mouseDoubleClickEvent(event)

    def enterEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt API
        # keys (Space to pan, Enter to close a polygon) go to the canvas under the
        # cursor, not to the last-clicked panel, where Space would press a button
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        super().enterEvent(event)

    def focusOutEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt API
        self._space = False
        super().focusOutEvent(event)

    def leaveEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt API
        self.cursor_item.setVisible(False)
        self.cursorMoved.emit(-1, -1)
        super().leaveEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt API
        key = event.key()
        if key == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = True
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            return
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.tool is Tool.POLYGON:
            self._finish_polygon()
            return
        if key == Qt.Key.Key_Escape:
            self.cancel_gesture()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt API
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
            self.set_tool(self.tool)
            return
        super().keyReleaseEvent(event)

    # -- polygon -------------------------------------------------------------------------

    def _update_polygon_preview(self, cursor: QPointF) -> None:
        path = QPainterPath()
        if self._polygon:
            path.moveTo(self._polygon[0])
            for q in self._polygon[1:]:
                path.lineTo(q)
            path.lineTo(self._clamped(cursor))
            path.closeSubpath()
        self.preview_item.setPath(path)

    def _emit_segment(self, a: QPointF, b: QPointF) -> None:
        # scene (x, y) lies in pixel (floor x, floor y), whose centre is at +0.5
        self.strokeMoved.emit(a.x() - 0.5, a.y() - 0.5, b.x() - 0.5, b.y() - 0.5)

    def _finish_polygon(self) -> None:
        points = [(p.x() - 0.5, p.y() - 0.5) for p in self._polygon]
        self._polygon = []
        self.preview_item.setPath(QPainterPath())
        if len(points) >= 3:
            self.polygonFinished.emit(points)
