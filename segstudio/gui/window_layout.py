"""The window's shape: canvas first, narrow docks that never cut their contents off.

- :func:`default_geometry`: a first size that fits the screen (a 1366 x 768
  laptop included), centred;
- :class:`CanvasPage`: the tool palette at the canvas's left edge, the canvas,
  and the overview in its corner;
- :class:`Section`: a titled part of a dock that folds away (Layers under Classes);
- :class:`Docks`: narrow, closable docks whose contents scroll (a short screen
  scrolls them instead of cutting their last buttons off or growing the window),
  View → Panels, and hiding them all for a canvas-only window.
"""

from __future__ import annotations

from collections.abc import Mapping

from PySide6.QtCore import QRect, QSize, Qt, QTimer
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QDockWidget,
    QFrame,
    QHBoxLayout,
    QMainWindow,
    QMenu,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from segstudio.gui.canvas import Canvas
from segstudio.gui.minimap import Minimap
from segstudio.gui.tool_palette import ToolPalette

#: The size the window opens at on a large screen.
PREFERRED = QSize(1440, 900)
#: Room kept for the window manager's title bar and frame.
FRAME_ALLOWANCE = QSize(0, 32)
#: Dock widths (left: images, right: classes and the rest) for a window this wide.
NARROW_WINDOW = 1500
#: From this height on, the Layers section starts unfolded.
TALL_WINDOW = 860


def default_geometry(available: QRect) -> QRect:
    """The window's first geometry (client area) on a screen with ``available`` room:
    :data:`PREFERRED` or smaller, never beyond the screen, centred."""
    w = min(PREFERRED.width(), available.width() - FRAME_ALLOWANCE.width())
    h = min(PREFERRED.height(), available.height() - FRAME_ALLOWANCE.height())
    x = available.x() + (available.width() - w) // 2
    top = FRAME_ALLOWANCE.height()  # the title bar sits above the client area
    y = available.y() + top + max(0, (available.height() - top - h) // 2)
    return QRect(x, y, max(w, 1), max(h, 1))


def fills_screen(geometry: QRect, available: QRect) -> bool:
    """Whether ``geometry`` is (nearly) the whole screen: then open the window maximised."""
    return (
        geometry.width() >= available.width() - 64 or geometry.height() >= available.height() - 96
    )


#: The least height :meth:`Docks.split` leaves the lower dock (Training and Models).
BOTTOM_MIN = 180


def dock_widths(window_width: int) -> tuple[int, int]:
    """(images, right side) widths: together at most about a third of the window."""
    if window_width < NARROW_WINDOW:
        return 180, 280
    return 220, 320


def roomy(window_height: int) -> bool:
    """Whether the right column has room for Classes with Layers unfolded above the
    Training and Models tabs (on a shorter screen Layers starts folded)."""
    return window_height >= TALL_WINDOW


class CanvasPage(QWidget):
    """The tool palette, the canvas and its overview, side by side."""

    def __init__(self, canvas: Canvas, actions: Mapping[str, QAction]) -> None:
        super().__init__()
        self.setObjectName("canvasPage")
        self.canvas = canvas
        self.palette_bar = ToolPalette(actions)
        self.minimap = Minimap(canvas)
        rule = QFrame()
        rule.setFrameShape(QFrame.Shape.VLine)
        rule.setFrameShadow(QFrame.Shadow.Sunken)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.palette_bar)
        layout.addWidget(rule)
        layout.addWidget(canvas, stretch=1)


class Section(QWidget):
    """``title`` over ``body``; the title is a button that folds the body away."""

    def __init__(self, title: str, body: QWidget, name: str, expanded: bool = True) -> None:
        super().__init__()
        self.setObjectName(name)
        self.body = body
        self.header = QToolButton()
        self.header.setObjectName(f"{name}Header")
        self.header.setText(title)
        self.header.setCheckable(True)
        self.header.setChecked(expanded)
        self.header.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.header.setAutoRaise(True)
        self.header.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.header.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.header.setStyleSheet("QToolButton { font-weight: bold; border: none; }")
        self.header.toggled.connect(self.set_expanded)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.header)
        layout.addWidget(body)
        self.set_expanded(expanded)

    def set_expanded(self, on: bool) -> None:
        if self.header.isChecked() != on:
            self.header.setChecked(on)  # comes back here through toggled
            return
        self.header.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)
        self.body.setVisible(on)

    @property
    def expanded(self) -> bool:
        return self.header.isChecked()


def stacked(*parts: tuple[QWidget, int]) -> QWidget:
    """``parts`` (widget, stretch) one above the other, without margins."""
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(2)
    for widget, stretch in parts:
        layout.addWidget(widget, stretch)
    return box


def scrolling(widget: QWidget) -> QScrollArea:
    """``widget`` in a frameless scroll area that resizes it (scrolls only when too short)."""
    area = QScrollArea()
    area.setObjectName(f"{widget.objectName() or 'panel'}Scroll")
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    return area


class Docks:
    """The window's docks: each closable and movable, its panel in a scroll area."""

    def __init__(self, window: QMainWindow) -> None:
        self.window = window
        self.docks: list[QDockWidget] = []
        self._hidden: list[QDockWidget] = []  # put away by hide_all(True)
        self._section: Section | None = None  # the folding section fit() follows

    def add(self, title: str, widget: QWidget, area: Qt.DockWidgetArea, name: str) -> QDockWidget:
        dock = QDockWidget(title, self.window)
        dock.setObjectName(name)
        dock.setWidget(scrolling(widget))
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
            | QDockWidget.DockWidgetFeature.DockWidgetClosable
        )
        self.window.addDockWidget(area, dock)
        self.docks.append(dock)
        return dock

    def add_menu(self, parent: QMenu) -> QMenu:
        """View → Panels: each dock's show/hide toggle (``show_<dock objectName>``)."""
        menu = parent.addMenu("Pa&nels")
        for dock in self.docks:
            toggle = dock.toggleViewAction()
            toggle.setObjectName(f"show_{dock.objectName()}")
            menu.addAction(toggle)
        return menu

    def hide_all(self, hide: bool) -> None:
        """Hide every dock (the canvas takes the window), or bring back those hidden."""
        if hide:
            self._hidden = [d for d in self.docks if not d.isHidden()]
            for dock in self._hidden:
                dock.hide()
        else:
            for dock in self._hidden or self.docks:
                dock.show()
            self._hidden = []

    def fit(
        self, left: QDockWidget, top: QDockWidget, bottom: QDockWidget, section: Section
    ) -> None:
        """Narrow side docks (the canvas keeps most of the width); ``top`` (the classes)
        over ``bottom``, tall enough for its contents, ``section`` unfolded if roomy."""
        w, h = self.window.width(), max(self.window.height(), 400)
        left_w, right_w = dock_widths(w)
        self.window.resizeDocks([left, top], [left_w, right_w], Qt.Orientation.Horizontal)
        section.set_expanded(roomy(h))
        self.split(top, bottom)
        if self._section is not section:  # unfolded (or folded) later: the split follows
            self._section = section
            section.header.toggled.connect(
                lambda _on: QTimer.singleShot(0, lambda: self.split(top, bottom))
            )

    def split(self, top: QDockWidget, bottom: QDockWidget) -> None:
        """``top`` over ``bottom``: ``top`` tall enough for its contents (at least half the
        column), ``bottom`` keeps :data:`BOTTOM_MIN` px."""
        h = max(self.window.height(), 400)
        if top.isVisible() and bottom.isVisible():  # the column the two share now
            tabs = [bottom, *self.window.tabifiedDockWidgets(bottom)]  # a hidden tab: stale
            below = max(d.height() for d in tabs if not d.visibleRegion().isEmpty() or d is bottom)
            h = max(top.height() + below, 2 * BOTTOM_MIN)
        area = top.widget()
        inner = area.widget() if isinstance(area, QScrollArea) else area
        if inner is not None and inner.layout() is not None:
            inner.layout().activate()  # a section just folded or unfolded: its size now
        content = (inner.sizeHint().height() if inner is not None else h // 2) + 32
        upper = min(max(content, h // 2), h - BOTTOM_MIN)
        self.window.resizeDocks([top, bottom], [upper, h - upper], Qt.Orientation.Vertical)
