"""The parts of the window its controllers share.

A controller gets this bundle instead of the window itself: the parent of its
dialogs, the status bar, the actions by objectName, the canvas and the two
panels most of them touch (through their methods).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMainWindow, QStatusBar

from segstudio.gui.canvas import Canvas
from segstudio.gui.image_list import ImageListPanel
from segstudio.gui.palette_panel import PalettePanel


@dataclass(frozen=True)
class Ui:
    """The window's shared parts (see the module docstring)."""

    window: QMainWindow
    actions: Mapping[str, QAction]
    canvas: Canvas
    images: ImageListPanel
    palette: PalettePanel

    @property
    def status(self) -> QStatusBar:
        return self.window.statusBar()

    def action(self, name: str) -> QAction:
        return self.actions[name]

    def say(self, text: str, ms: int = 0) -> None:
        """A line in the status bar (for ``ms`` milliseconds; 0: until replaced)."""
        self.window.statusBar().showMessage(text, ms)

    def checked(self, name: str) -> bool:
        return self.actions[name].isChecked()

    def set_checked(self, name: str, on: bool) -> None:
        """Check or uncheck an action without running what it is connected to."""
        set_quietly(self.actions[name], on)


def set_quietly(action: QAction, on: bool) -> None:
    """Check or uncheck ``action`` without emitting its signals."""
    blocked = action.blockSignals(True)
    action.setChecked(on)
    action.blockSignals(blocked)
