"""The window's status bar: a message too long for the room left of the permanent parts
(the fill options, progress bars, the model, the zoom) ends in "…" and shows in full as
the status bar's tooltip, instead of being cut off under them; and the text that
describes the pixel under the cursor (:func:`cursor_text`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QPainter, QPaintEvent
from PySide6.QtWidgets import QStatusBar, QStyle, QStyleOption, QWidget

from segstudio.core.labelset import UNLABELED, LabelSet

if TYPE_CHECKING:
    from segstudio.session.document import ImageDocument


def cursor_text(
    doc: ImageDocument | None, ls: LabelSet | None, painting: int, x: int, y: int
) -> str:
    """What the status bar says of pixel (x, y) of ``doc`` (x < 0: the cursor is off the
    image): its label, its prediction and confidence, a high-bit-depth value, and the
    class being painted (``painting``)."""
    current = ""
    if ls is not None and ls.num_classes:
        current = f"painting: {ls.names[min(painting, ls.num_classes - 1)]}"
    if doc is None or x < 0 or ls is None:
        return current

    def name(v: int) -> str:
        return "unlabeled" if v == UNLABELED or v >= ls.num_classes else ls.names[v]

    parts = [f"x {x}, y {y}", f"label: {name(int(doc.labels[y, x]))}"]
    if doc.prediction is not None:
        conf = doc.prediction.confidence[y, x] / 255
        parts.append(f"predicted: {name(int(doc.prediction.labels[y, x]))} ({conf:.2f})")
    if doc.image.bit_depth > 8:
        parts.append(f"value: {doc.image.raw[y, x]}")
    return "   ·   ".join([*parts, current])


class StatusBar(QStatusBar):
    """A :class:`QStatusBar` that elides its message; used as usual (``showMessage``,
    ``addPermanentWidget``...).

    :meth:`message_rect` is where the message goes, :meth:`shown_message` the text
    drawn there: the message itself when it fits.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._permanent: list[QWidget] = []
        self.messageChanged.connect(lambda _text: self._sync_tooltip())

    def addPermanentWidget(self, widget: QWidget, stretch: int | None = 0) -> None:  # noqa: N802
        self._permanent.append(widget)
        super().addPermanentWidget(widget, stretch or 0)

    def insertPermanentWidget(  # noqa: N802
        self, index: int, widget: QWidget, stretch: int | None = 0
    ) -> int:
        self._permanent.append(widget)
        return super().insertPermanentWidget(index, widget, stretch or 0)

    def removeWidget(self, widget: QWidget) -> None:  # noqa: N802
        if widget in self._permanent:
            self._permanent.remove(widget)
        super().removeWidget(widget)

    def message_rect(self) -> QRect:
        """From the left edge to the first visible permanent part (as Qt lays it out)."""
        right = self.width() - 12
        for widget in self._permanent:
            if widget.isVisible():
                right = min(right, widget.x() - 2)
        return QRect(6, 0, max(0, right - 6), self.height())

    def shown_message(self) -> str:
        """The message as drawn: cut to the room it has, ending in "…"."""
        width = self.message_rect().width()
        return self.fontMetrics().elidedText(
            self.currentMessage(), Qt.TextElideMode.ElideRight, width
        )

    def _sync_tooltip(self) -> None:
        message = self.currentMessage()
        tip = message if message and self.shown_message() != message else ""
        if tip != self.toolTip():
            self.setToolTip(tip)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt API
        self._sync_tooltip()  # the room changes with the window and the parts shown
        if not self.currentMessage():
            super().paintEvent(event)
            return
        painter = QPainter(self)
        option = QStyleOption()
        option.initFrom(self)
        style = self.style()
        style.drawPrimitive(QStyle.PrimitiveElement.PE_PanelStatusBar, option, painter, self)
        for widget in self._permanent:  # their frames, as QStatusBar draws them
            if widget.isVisible():
                frame = QStyleOption()
                frame.rect = widget.geometry().adjusted(-2, -1, 2, 1)
                frame.palette = self.palette()
                style.drawPrimitive(
                    QStyle.PrimitiveElement.PE_FrameStatusBarItem, frame, painter, widget
                )
        painter.setPen(self.palette().windowText().color())
        align = Qt.AlignmentFlag.AlignLeading | Qt.AlignmentFlag.AlignVCenter
        painter.drawText(
            self.message_rect(), align | Qt.TextFlag.TextSingleLine, self.shown_message()
        )
