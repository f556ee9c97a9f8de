"""The overview: a thumbnail of the whole image in the canvas's corner, with the visible part.

Shown only while the image is larger than the view (zoomed in, or a huge
image); a click or a drag in it centres the view there. It reads the canvas
through its public API only: the image item's pixmap when ``imageChanged``
fires, ``mapToScene`` of the viewport for the visible rectangle (after a
zoom, a scroll or a resize), and ``centerOn`` to move.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QPointF, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPainterPath, QPaintEvent, QPen, QPixmap
from PySide6.QtWidgets import QWidget

from segstudio.gui.canvas import Canvas

#: The thumbnail fits in this many device-independent pixels.
MAX_SIDE = 180
#: Gap to the viewport's corner.
MARGIN = 10
#: Frame around the thumbnail.
BORDER = 3


def thumbnail(pixmap: QPixmap, side: int, dpr: float) -> QPixmap:
    """``pixmap`` scaled to fit ``side`` x ``side`` logical pixels, sharp at ``dpr``.

    A huge image is first reduced with the fast filter to a few times the
    target size, then smoothed: a 12000 x 9000 image takes milliseconds.
    """
    target = max(1, round(side * dpr))
    src = pixmap
    if max(src.width(), src.height()) > 4 * target:
        src = src.scaled(
            4 * target,
            4 * target,
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.FastTransformation,
        )
    thumb = src.scaled(
        target,
        target,
        Qt.AspectRatioMode.KeepAspectRatio,
        Qt.TransformationMode.SmoothTransformation,
    )
    thumb.setDevicePixelRatio(dpr)
    return thumb


class Minimap(QWidget):
    """An overview over ``canvas``'s bottom-right corner (a child of the canvas)."""

    def __init__(self, canvas: Canvas) -> None:
        super().__init__(canvas)
        self.setObjectName("minimap")
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Overview: click or drag to move the view (View → Show overview)")
        self.canvas = canvas
        self.wanted = True  # View → Show overview
        self._thumb = QPixmap()
        self._image = QSize()  # the image's size in pixels (scene units)
        canvas.imageChanged.connect(self.image_changed)
        canvas.zoomChanged.connect(self.view_changed)
        canvas.horizontalScrollBar().valueChanged.connect(self.view_changed)
        canvas.verticalScrollBar().valueChanged.connect(self.view_changed)
        canvas.horizontalScrollBar().rangeChanged.connect(self.view_changed)
        canvas.verticalScrollBar().rangeChanged.connect(self.view_changed)
        canvas.installEventFilter(self)
        self.hide()

    # -- what it shows -----------------------------------------------------------------------

    def set_wanted(self, on: bool) -> None:
        self.wanted = on
        self.view_changed()

    def image_changed(self) -> None:
        """A new image on the canvas: a new thumbnail."""
        pix = self.canvas.image_item.pixmap()
        if pix.isNull():
            self._thumb, self._image = QPixmap(), QSize()
        else:
            self._image = pix.size()
            self._thumb = thumbnail(pix, MAX_SIDE, self.devicePixelRatioF())
        self.view_changed()

    def visible_rect(self) -> QRectF:
        """The part of the image in the view, in image pixels."""
        view = self.canvas.mapToScene(self.canvas.viewport().rect()).boundingRect()
        return view.intersected(QRectF(0, 0, self._image.width(), self._image.height()))

    def needed(self) -> bool:
        """Whether the image is larger than the view (some of it is out of sight)."""
        if self._thumb.isNull() or not self.wanted:
            return False
        seen = self.visible_rect()
        return seen.width() < self._image.width() - 1 or seen.height() < self._image.height() - 1

    def view_changed(self, *_args: object) -> None:
        show = self.needed()
        if show:
            self._place()
            self.update()
        self.setVisible(show)

    def _thumb_size(self) -> QSize:
        return self._thumb.deviceIndependentSize().toSize()

    def _place(self) -> None:
        size = self._thumb_size() + QSize(2 * BORDER, 2 * BORDER)
        vp = self.canvas.viewport().geometry()  # in the canvas's coordinates
        self.setGeometry(
            QRect(
                vp.right() - MARGIN - size.width() + 1,
                vp.bottom() - MARGIN - size.height() + 1,
                size.width(),
                size.height(),
            )
        )

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        if watched is self.canvas and event.type() == QEvent.Type.Resize:
            self.view_changed()
        return False

    # -- painting and moving the view ------------------------------------------------------

    def _image_area(self) -> QRectF:
        """Where the thumbnail is drawn, in this widget's coordinates."""
        s = self._thumb_size()
        return QRectF(BORDER, BORDER, s.width(), s.height())

    def _to_widget(self, r: QRectF) -> QRectF:
        area = self._image_area()
        sx = area.width() / max(1, self._image.width())
        sy = area.height() / max(1, self._image.height())
        return QRectF(area.x() + r.x() * sx, area.y() + r.y() * sy, r.width() * sx, r.height() * sy)

    def to_image(self, p: QPointF) -> QPointF:
        """The image point under widget point ``p`` (clamped to the image)."""
        area = self._image_area()
        x = (p.x() - area.x()) / max(1e-6, area.width()) * self._image.width()
        y = (p.y() - area.y()) / max(1e-6, area.height()) * self._image.height()
        return QPointF(
            min(max(x, 0.0), float(self._image.width())),
            min(max(y, 0.0), float(self._image.height())),
        )

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt API
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(QColor(255, 255, 255, 90), 1))
        painter.setBrush(QColor(20, 20, 22, 215))
        painter.drawRoundedRect(QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5), 4, 4)
        area = self._image_area()
        painter.drawPixmap(area.topLeft(), self._thumb)
        seen = self._to_widget(self.visible_rect())
        outside = QPainterPath()
        outside.addRect(area)
        inside = QPainterPath()
        inside.addRect(seen)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 110))  # dim what is out of sight
        painter.drawPath(outside.subtracted(inside))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(QPen(QColor(0, 0, 0, 200), 3))  # a dark halo: visible on light images
        painter.drawRect(seen)
        painter.setPen(QPen(QColor(255, 214, 0), 1.5))
        painter.drawRect(seen)
        painter.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        if event.button() == Qt.MouseButton.LeftButton:
            self.canvas.centerOn(self.to_image(event.position()))
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        if event.buttons() & Qt.MouseButton.LeftButton:
            self.canvas.centerOn(self.to_image(event.position()))
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        event.accept()
