"""The vertical tool palette at the canvas's left edge: the tools, then the commands.

Icon buttons for the window's actions (the palette owns no behaviour): the
tools as one exclusive group with a tinted, outlined active state, the
lock, then undo/redo, predict and review. Each tooltip names the action and
its key. Icons and the active colour follow the theme: :meth:`ToolPalette.restyle`
runs on every palette change.
"""

from __future__ import annotations

from collections.abc import Mapping

from PySide6.QtCore import QEvent, QSize, Qt
from PySide6.QtGui import QAction, QColor, QPalette
from PySide6.QtWidgets import QToolBar, QToolButton, QWidget

from segstudio.gui.actions import ICONS, TOOL_ACTIONS
from segstudio.gui.theme import icon, is_dark

#: The palette's groups, top to bottom (a separator between groups).
GROUPS: tuple[tuple[str, ...], ...] = (
    tuple(TOOL_ACTIONS),
    ("actionLockUnlabeled",),
    ("actionUndo", "actionRedo"),
    ("actionPredictImage", "actionAcceptPrediction", "actionMarkReviewed"),
    ("actionFit", "actionToggleOverview"),
)
#: Icon size in device-independent pixels (rendered at 2x where the screen is).
ICON_PX = 22


class ToolPalette(QToolBar):
    """Icon buttons for ``actions`` (by objectName), in :data:`GROUPS`."""

    def __init__(self, actions: Mapping[str, QAction], parent: QWidget | None = None) -> None:
        super().__init__("Tools", parent)
        self.setObjectName("toolPalette")
        self.setOrientation(Qt.Orientation.Vertical)
        self.setMovable(False)
        self.setFloatable(False)
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        self.setIconSize(QSize(ICON_PX, ICON_PX))
        self.actions_by_name = dict(actions)
        self._restyling = False
        for i, group in enumerate(GROUPS):
            if i:
                self.addSeparator()
            for name in group:
                self.addAction(actions[name])
                button = self.button(name)
                button.setObjectName(f"palette_{name.removeprefix('action')}")
                button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys stay with the canvas
        self.restyle()

    def button(self, name: str) -> QToolButton:
        """The button of action ``name``."""
        widget = self.widgetForAction(self.actions_by_name[name])
        assert isinstance(widget, QToolButton)
        return widget

    def restyle(self) -> None:
        """Icons and the checked look in the current palette's colours."""
        if self._restyling:
            return
        self._restyling = True
        try:
            self._restyle()
        finally:
            self._restyling = False

    def _restyle(self) -> None:
        pal = self.palette()
        for group in GROUPS:
            for name in group:
                self.actions_by_name[name].setIcon(icon(ICONS[name], pal))
        hi = pal.color(QPalette.ColorRole.Highlight)
        hover = pal.color(QPalette.ColorRole.Midlight if is_dark(pal) else QPalette.ColorRole.Mid)
        self.setStyleSheet(
            "QToolBar#toolPalette { spacing: 2px; padding: 3px 2px; border: none; }"
            "QToolBar#toolPalette QToolButton { border: 1px solid transparent;"
            " border-radius: 5px; padding: 4px; }"
            f"QToolBar#toolPalette QToolButton:hover {{ background: {_rgba(hover, 0.55)}; }}"
            f"QToolBar#toolPalette QToolButton:checked {{ background: {_rgba(hi, 0.32)};"
            f" border: 1px solid {hi.name()}; }}"
        )

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt API
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self.restyle()


def _rgba(c: QColor, alpha: float) -> str:
    return f"rgba({c.red()}, {c.green()}, {c.blue()}, {alpha:.2f})"
