"""Canvas first: the window fits a 1366 x 768 laptop with the canvas at least 60 % of its
width and nothing cut off; the icon tool palette; the panels fold away; the welcome page
has no tools; the overview moves the view."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, QRect, QSize, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtTest import QTest
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QLabel,
    QScrollArea,
    QWidget,
)

from segstudio.gui.actions import ACTIONS, TOOL_ACTIONS
from segstudio.gui.canvas import Tool
from segstudio.gui.main_window import MainWindow
from segstudio.gui.window_layout import PREFERRED, default_geometry

from .conftest import open_window

LAPTOP = QSize(1366, 768)


def _within(inner: QRect, outer: QRect) -> bool:
    return outer.contains(inner.topLeft()) and outer.contains(inner.bottomRight())


def _rect_in(widget: QWidget, ancestor: QWidget) -> QRect:
    return QRect(widget.mapTo(ancestor, QPoint(0, 0)), widget.size())


@pytest.fixture
def laptop(qtbot, folder: Path) -> Iterator[MainWindow]:
    """The window at a 1366 x 768 laptop's size with a project open."""
    win = open_window(qtbot, folder, (LAPTOP.width(), LAPTOP.height()))
    yield win
    win.close()


def test_default_geometry_fits_the_screen(qtbot) -> None:
    laptop = QRect(0, 0, 1366, 768)
    geometry = default_geometry(laptop)
    assert _within(geometry, laptop)
    assert geometry.top() >= 24  # room for the title bar above the client area
    big = default_geometry(QRect(0, 0, 2560, 1440))
    assert big.size() == PREFERRED and _within(big, QRect(0, 0, 2560, 1440))
    win = MainWindow()  # on this (offscreen) screen: never larger than its free area
    qtbot.addWidget(win)
    screen = (win.screen() or QGuiApplication.primaryScreen()).availableGeometry()
    assert win.width() <= screen.width() and win.height() <= screen.height()


def test_canvas_gets_most_of_a_laptop_screen_and_nothing_is_cut_off(
    laptop: MainWindow, qtbot
) -> None:
    win = laptop
    assert win.minimumSizeHint().width() <= LAPTOP.width()
    assert win.minimumSizeHint().height() <= LAPTOP.height()
    assert win.canvas.width() / win.width() >= 0.6
    area = win.rect()
    docks = [win.images_dock, win.classes_dock, win.models_dock]
    for dock in docks:
        assert dock.isVisible(), dock.objectName()
        assert _within(_rect_in(dock, win), area), dock.objectName()
    # the classes, their buttons and the Layers header are all in sight, no scrolling
    scroll = win.classes_dock.widget()
    assert isinstance(scroll, QScrollArea)
    assert scroll.verticalScrollBar().maximum() == 0
    assert scroll.horizontalScrollBar().maximum() == 0
    viewport = _rect_in(scroll.viewport(), win)
    for button in scroll.widget().findChildren(QAbstractButton):
        if button.isVisible():
            assert _within(_rect_in(button, win), viewport), button.objectName() or button.text()
    bar = win.statusBar()
    assert _within(_rect_in(bar, win), area)
    for part in bar.findChildren(QWidget):
        if part.isVisible() and part.parent() is bar:
            assert _within(_rect_in(part, win), area), part.objectName()
    # the tool palette shows every button: none hides in an overflow menu
    for name in TOOL_ACTIONS:
        button = win.tool_palette.button(name)
        assert button.isVisible() and _within(_rect_in(button, win), area), name


def test_docks_fold_away_and_come_back(laptop: MainWindow, qtbot) -> None:
    win = laptop
    before = win.canvas.width()
    QTest.keySequence(win, "Ctrl+Shift+F")
    qtbot.waitUntil(lambda: not win.classes_dock.isVisible())
    assert not win.images_dock.isVisible()
    qtbot.waitUntil(lambda: win.canvas.width() > before + 300)
    QTest.keySequence(win, "Ctrl+Shift+F")
    qtbot.waitUntil(lambda: win.classes_dock.isVisible() and win.images_dock.isVisible())
    # Layers is a section under the classes that folds with a click on its title
    section = win.layers_section
    was = section.expanded
    qtbot.mouseClick(section.header, Qt.MouseButton.LeftButton)
    assert section.expanded is not was
    assert section.body.isVisible() is (not was)


def test_tool_palette_picks_tools_with_real_clicks(window: MainWindow, qtbot) -> None:
    palette = window.tool_palette
    keys = {s.name: s.shortcuts[0] for s in ACTIONS}
    for name in TOOL_ACTIONS:
        button = palette.button(name)
        assert not button.icon().isNull(), name
        assert f"({keys[name]}" in button.toolTip(), button.toolTip()
    eraser = palette.button("actionToolEraser")
    qtbot.mouseClick(eraser, Qt.MouseButton.LeftButton)
    assert window.canvas.tool is Tool.ERASER
    assert eraser.isChecked()
    assert not palette.button("actionToolBrush").isChecked()
    QTest.keyClick(window, Qt.Key.Key_P)  # a key checks the palette's button too
    assert palette.button("actionToolPolygon").isChecked() and not eraser.isChecked()


def test_icons_are_sharp_at_2x(window: MainWindow) -> None:
    icon = window.tool_palette.button("actionToolBrush").icon()
    pix = icon.pixmap(QSize(22, 22), 2.0)
    assert pix.devicePixelRatio() == 2.0
    assert pix.size() == QSize(44, 44)  # drawn at 44 px, not a 22 px image scaled up


def test_welcome_page_has_no_tools_and_closing_clears_the_status_bar(qtbot, folder: Path) -> None:
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    assert win.stack.currentWidget() is win.welcome
    for name in (*TOOL_ACTIONS, "actionClass1", "actionZoomIn", "actionPredictImage"):
        assert not win.action(name).isEnabled(), name
    QTest.keyClick(win, Qt.Key.Key_E)  # a tool key on the welcome page does nothing
    assert win.canvas.tool is Tool.BRUSH
    assert not win.prediction.model_label.isVisible()
    assert win.open_folder(folder)
    qtbot.waitUntil(lambda: win.doc is not None)
    assert win.action("actionToolEraser").isEnabled()
    assert win.prediction.model_label.isVisible() and win.editing.pos_label.isVisible()
    win.statusBar().showMessage("Model: something")
    win.action("actionCloseFolder").trigger()
    assert win.stack.currentWidget() is win.welcome
    assert not win.action("actionToolEraser").isEnabled()
    assert win.statusBar().currentMessage() == ""
    for part in win.project_status:
        assert not part.isVisible(), part.objectName()
    win.close()


@pytest.fixture
def big_image(tmp_path: Path) -> Path:
    folder = tmp_path / "big"
    folder.mkdir()
    img = np.zeros((600, 800, 3), np.uint8)
    img[:, :, 0] = np.linspace(0, 255, 800, dtype=np.uint8)[None, :]
    Image.fromarray(img).save(folder / "big.png")
    return folder


def test_overview_shows_when_zoomed_in_and_moves_the_view(qtbot, big_image: Path) -> None:
    win = open_window(qtbot, big_image)
    canvas, minimap = win.canvas, win.minimap
    canvas.fit()
    assert not minimap.isVisible()  # the whole image is in view: no overview
    canvas.zoom_to(4.0)
    canvas.centerOn(100, 100)
    qtbot.waitUntil(minimap.isVisible)
    assert _within(minimap.geometry(), canvas.viewport().geometry())
    # a click at the overview's bottom-right quarter brings that part of the image into view
    area = minimap._image_area()
    target = area.topLeft() + (area.bottomRight() - area.topLeft()) * 0.75
    qtbot.mouseClick(minimap, Qt.MouseButton.LeftButton, pos=target.toPoint())
    seen = minimap.visible_rect()
    assert seen.contains(600, 450), seen
    # a drag goes on moving it
    QTest.mousePress(minimap, Qt.MouseButton.LeftButton, pos=target.toPoint())
    start = area.topLeft() + (area.bottomRight() - area.topLeft()) * 0.25
    QTest.mouseMove(minimap, start.toPoint())
    QTest.mouseRelease(minimap, Qt.MouseButton.LeftButton, pos=start.toPoint())
    assert minimap.visible_rect().contains(200, 150)
    win.action("actionToggleOverview").trigger()  # View → Show overview: off
    assert not minimap.isVisible()
    win.action("actionToggleOverview").trigger()
    assert minimap.isVisible()
    win.close()


def test_the_panels_menu_lists_every_dock(window: MainWindow) -> None:
    names: set[str] = set()
    menus = [a.menu() for a in window.menuBar().actions() if a.menu() is not None]
    while menus:
        menu = menus.pop()
        for action in menu.actions():
            names.add(action.objectName())
            if action.menu() is not None:
                menus.append(action.menu())
    for dock in ("imagesDock", "classesDock", "trainingDock", "modelsDock"):
        assert f"show_{dock}" in names


def test_docks_scroll_their_panels_instead_of_cutting_them_off(window: MainWindow, qtbot) -> None:
    """On a short window each dock scrolls its panel: the window does not grow past the
    screen, and the last button of Classes is still reachable."""
    window.layers_section.set_expanded(True)
    window.resize(1000, 420)
    qtbot.waitUntil(lambda: window.height() == 420)
    assert window.minimumSizeHint().height() <= 420
    area = window.classes_dock.widget()
    assert isinstance(area, QScrollArea) and area.widgetResizable()
    qtbot.waitUntil(lambda: area.verticalScrollBar().maximum() > 0)
    last = window.layers_section
    area.ensureWidgetVisible(last)
    assert area.verticalScrollBar().value() > 0


def test_status_bar_zoom_label(window: MainWindow) -> None:
    window.canvas.zoom_to(2.0)
    label = window.findChild(QLabel, "zoomLevel")
    assert label is not None and label.text() == "200%"
    assert QApplication.instance() is not None
