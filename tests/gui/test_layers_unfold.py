"""Unfolding Layers on a laptop screen makes room for it: the confidence legend is in sight."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtWidgets import QScrollArea, QWidget

from segstudio.gui.main_window import MainWindow

from .conftest import open_window


def _rect_in(widget: QWidget, ancestor: QWidget) -> QRect:
    return QRect(widget.mapTo(ancestor, QPoint(0, 0)), widget.size())


@pytest.fixture
def laptop(qtbot, folder: Path) -> Iterator[MainWindow]:
    win = open_window(qtbot, folder, (1366, 740))  # a 1366 x 768 screen less a panel
    yield win
    win.close()


def test_unfolding_layers_shows_them_and_the_legend_without_scrolling(
    laptop: MainWindow, qtbot
) -> None:
    win = laptop
    section = win.layers_section
    assert not section.expanded  # a short screen: Layers starts folded
    classes, models = win.classes_dock.height(), win.models_dock.height()
    qtbot.mouseClick(section.header, Qt.MouseButton.LeftButton)
    assert section.expanded
    qtbot.waitUntil(lambda: win.classes_dock.height() > classes + 50, timeout=2000)
    scroll = win.classes_dock.widget()
    assert isinstance(scroll, QScrollArea)
    qtbot.waitUntil(lambda: scroll.verticalScrollBar().maximum() == 0, timeout=2000)
    legend = win.layers_panel.legend
    viewport = _rect_in(scroll.viewport(), win)
    assert legend.isVisible() and viewport.contains(_rect_in(legend, win))
    assert viewport.contains(_rect_in(win.layers_panel, win))
    assert win.models_dock.height() >= 150  # the docks below keep a usable height
    qtbot.mouseClick(section.header, Qt.MouseButton.LeftButton)  # folded: the space goes back
    qtbot.waitUntil(lambda: abs(win.models_dock.height() - models) <= 4, timeout=2000)
