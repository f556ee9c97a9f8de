"""Help (F1) shows the workflow and the keys; a new project asks for its classes on a page
of the window; themes recolour the icons; an error in a handler reaches the user."""

from __future__ import annotations

import json
import sys

import pytest
from PySide6.QtCore import QPoint, QSize, Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMessageBox, QPushButton, QRadioButton

from segstudio.gui.actions import ACTIONS
from segstudio.gui.app import install_excepthook
from segstudio.gui.main_window import MainWindow
from segstudio.gui.new_project import PLACEHOLDER, custom_labelset, split_names
from segstudio.gui.theme import (
    apply_theme,
    dark_palette,
    follow_system,
    icon,
    is_dark,
    system_prefers_dark,
)
from segstudio.io.project import STATE_DIR_NAME

from ..conftest import REPO
from .conftest import make_images

REPO_BUNDLED = REPO / "resources" / "camvid_segnet.safetensors"


def choose(qtbot, win: MainWindow, key: str) -> QRadioButton:
    """A real click on the new-project page's radio button ``key`` (on its circle)."""
    button = win.new_project.findChild(QRadioButton, f"newProject_{key}")
    assert button is not None, key
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton, pos=QPoint(8, button.height() // 2))
    return button


@pytest.fixture
def bare(qtbot) -> MainWindow:
    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(1200, 760)
    win.show()
    qtbot.waitExposed(win)
    return win


# -- help -------------------------------------------------------------------------------------


def test_f1_shows_the_workflow_and_keys_by_category(window: MainWindow, qtbot) -> None:
    QTest.keyClick(window, Qt.Key.Key_F1)
    dialog = window.shortcuts_dialog
    assert dialog is not None
    qtbot.waitUntil(dialog.isVisible)
    assert not dialog.isModal()
    text = dialog.workflow.toPlainText()
    for step in ("Open a folder", "Predict", "Correct", "Review", "Fine-tune", "Export"):
        assert step in text
    for key in ("Ctrl+O", "Ctrl+P", "Ctrl+T", "Ctrl+E", "Shift+A", "PgDown"):
        assert key in text, key
    table = dialog.table
    headers = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    assert headers == ["Action", "Keys"]  # no objectName column
    cells = [
        table.item(r, c).text()
        for r in range(table.rowCount())
        for c in range(table.columnCount())
        if table.item(r, c) is not None
    ]
    assert not [t for t in cells if t.startswith("action")]  # no objectNames shown
    for category in ("File", "Edit", "Tools", "View", "Image", "Model", "Mouse and canvas"):
        assert category in cells
    assert {s.name for s in ACTIONS} <= dialog.action_names()
    # the search keeps the matching rows and their category
    dialog.search.setText("GrabCut")
    shown = [table.item(r, 0).text() for r in range(table.rowCount()) if not table.isRowHidden(r)]
    assert "Tools" in shown and any("GrabCut" in t for t in shown) and "File" not in shown
    QTest.keyClick(window, Qt.Key.Key_F1)  # again: the same page, not a second one
    assert window.shortcuts_dialog is dialog
    dialog.close()


# -- a new project ------------------------------------------------------------------------


def test_names_typed_for_a_new_project() -> None:
    assert split_names("cell, nucleus;membrane\n ,") == ["cell", "nucleus", "membrane"]
    ls = custom_labelset(["Cell", "cell", "nucleus"])
    assert ls.names == ("Cell", "nucleus")
    (r0, g0, b0), (r1, g1, b1) = (c.color for c in ls.classes)
    assert abs(r0 - r1) + abs(g0 - g1) + abs(b0 - b1) > 150  # colours far from each other
    assert (0, 0, 0) not in [c.color for c in ls.classes]  # nor the unlabeled colour
    assert custom_labelset([]).names == (PLACEHOLDER,)


def test_a_new_folder_asks_for_its_classes_on_a_page(bare: MainWindow, qtbot, tmp_path) -> None:
    folder = make_images(tmp_path / "cells", n=2)
    assert bare.start_folder(folder)
    page = bare.new_project
    assert bare.stack.currentWidget() is page
    assert bare.project is None  # nothing created until the user answers
    assert not (folder / STATE_DIR_NAME).exists()
    assert not bare.action("actionToolBrush").isEnabled()
    start = page.findChild(QPushButton, "newProjectStart")
    assert not start.isEnabled()  # a choice first
    empty = choose(qtbot, bare, "empty")
    assert empty.isChecked() and start.isEnabled()
    qtbot.keyClicks(page.names, "cell, nucleus")
    qtbot.mouseClick(start, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bare.doc is not None)
    assert bare.project.labelset.names == ("cell", "nucleus")
    assert bare.palette.list.count() == 2
    assert bare.models.path is None  # no road model for cells
    assert bare.stack.currentWidget() is bare.canvas_page
    assert "2 classes" in bare.statusBar().currentMessage()
    bare.close_folder()
    assert bare.start_folder(folder)  # a project now: opened at once, with its classes
    qtbot.waitUntil(lambda: bare.doc is not None)
    assert bare.stack.currentWidget() is bare.canvas_page
    assert bare.project.labelset.names == ("cell", "nucleus")


def test_a_preset_for_a_new_project_and_cancel(bare: MainWindow, qtbot, tmp_path) -> None:
    folder = make_images(tmp_path / "voc", n=1)
    bare.start_folder(folder)
    qtbot.mouseClick(
        bare.new_project.findChild(QPushButton, "newProjectCancel"), Qt.MouseButton.LeftButton
    )
    assert bare.stack.currentWidget() is bare.welcome
    assert not (folder / STATE_DIR_NAME).exists()
    bare.start_folder(folder)
    assert choose(qtbot, bare, "voc").isChecked()
    qtbot.mouseClick(
        bare.new_project.findChild(QPushButton, "newProjectStart"), Qt.MouseButton.LeftButton
    )
    qtbot.waitUntil(lambda: bare.doc is not None)
    assert bare.project.labelset.num_classes == 21


def test_a_classes_file_beside_the_images_is_offered_first(
    bare: MainWindow, qtbot, tmp_path
) -> None:
    folder = make_images(tmp_path / "horse" / "images", n=1)
    classes = {
        "classes": [
            {"name": "background", "color": [10, 10, 10]},
            {"name": "horse", "color": [200, 60, 60]},
        ]
    }
    (folder.parent / "classes.json").write_text(json.dumps(classes))
    bare.start_folder(folder)
    chosen = bare.new_project.findChild(QRadioButton, "newProject_file")
    assert chosen is not None and chosen.isChecked()
    qtbot.mouseClick(
        bare.new_project.findChild(QPushButton, "newProjectStart"), Qt.MouseButton.LeftButton
    )
    qtbot.waitUntil(lambda: bare.doc is not None)
    assert bare.project.labelset.names == ("background", "horse")


def test_the_road_preset_says_the_bundled_model_predicts_it(
    bare: MainWindow, tmp_path, monkeypatch
) -> None:
    if not REPO_BUNDLED.is_file():
        pytest.skip("no bundled model in this checkout")
    monkeypatch.setenv("SEGSTUDIO_BUNDLED_MODEL", str(REPO_BUNDLED))
    bare.start_folder(make_images(tmp_path / "road", n=1))
    notes = [w.text() for w in bare.new_project.findChildren(type(bare.zoom_label))]
    road = next(t for t in notes if t.startswith("Sky, Building"))
    assert "bundled model predicts" in road
    voc = next(t for t in notes if t.startswith("background, aeroplane"))
    assert "bundled model" not in voc


def test_scripts_that_open_a_folder_are_never_asked(bare: MainWindow, qtbot, tmp_path) -> None:
    folder = make_images(tmp_path / "scripted", n=1)
    assert bare.open_folder(folder)  # the programmatic way: no page, the default classes
    qtbot.waitUntil(lambda: bare.doc is not None)
    assert bare.project.labelset.num_classes == 11


# -- themes -----------------------------------------------------------------------------------


def _ink(pixmap_icon, size: int = 24) -> QColor:
    """The colour of an icon's most opaque pixel."""
    image = pixmap_icon.pixmap(QSize(size, size)).toImage()
    best, color = -1, QColor()
    for y in range(image.height()):
        for x in range(image.width()):
            c = image.pixelColor(x, y)
            if c.alpha() > best:
                best, color = c.alpha(), c
    return color


def test_icons_follow_the_theme(qtbot, bare: MainWindow) -> None:
    dark = dark_palette()
    assert _ink(icon("brush", dark)).lightness() > 180  # light ink on a dark theme
    light = QPalette(QColor(240, 240, 240))
    assert _ink(icon("brush", light)).lightness() < 100
    app = QApplication.instance()
    before = app.palette()
    try:
        app.setPalette(dark)
        qtbot.waitUntil(
            lambda: _ink(bare.tool_palette.button("actionToolFill").icon()).lightness() > 180
        )
        assert _ink(bare.action("actionPredictAll").icon()).lightness() > 180  # menus too
    finally:
        app.setPalette(before)


def test_the_theme_follows_the_system_or_the_setting(qtbot, monkeypatch) -> None:
    app = QApplication.instance()
    before, style = app.palette(), app.style().name()
    follow = None
    try:
        monkeypatch.setenv("SEGSTUDIO_THEME", "dark")
        assert system_prefers_dark(app)
        follow = follow_system(app)
        assert is_dark(app.palette()) and app.style().name().lower() == "fusion"
        monkeypatch.setenv("SEGSTUDIO_THEME", "light")
        apply_theme(app, system_prefers_dark(app))
        assert not is_dark(app.palette())
        monkeypatch.delenv("SEGSTUDIO_THEME")
        scheme = app.styleHints().colorScheme()
        if scheme != Qt.ColorScheme.Unknown:  # the platform says: that is followed
            assert system_prefers_dark(app) is (scheme == Qt.ColorScheme.Dark)
    finally:
        if follow is not None:
            app.styleHints().colorSchemeChanged.disconnect(follow)
        app.setStyle(style)
        app.setPalette(before)


# -- errors in handlers -------------------------------------------------------------------


@pytest.mark.qt_no_exception_capture
def test_an_error_in_a_handler_is_shown_once_and_logged(bare: MainWindow, qtbot, caplog) -> None:
    hook = sys.excepthook
    reporter = install_excepthook(bare)
    try:
        action = bare.action("actionAbout")
        action.triggered.disconnect()

        def broken() -> None:
            raise ValueError("the handler broke")

        action.triggered.connect(broken)
        action.trigger()
        qtbot.waitUntil(lambda: len(reporter.boxes) == 1)
        box = reporter.boxes[0]
        assert isinstance(box, QMessageBox) and box.isVisible()
        assert box.windowModality() == Qt.WindowModality.NonModal
        assert "ValueError: the handler broke" in box.text()
        assert "raise ValueError" in box.detailedText()
        assert "the handler broke" in bare.statusBar().currentMessage()
        assert any("unhandled error" in r.message for r in caplog.records)
        bare.statusBar().clearMessage()
        action.trigger()  # the same error again: the status bar and the log, no new box
        qtbot.waitUntil(lambda: "the handler broke" in bare.statusBar().currentMessage())
        assert len(reporter.boxes) == 1
        box.close()
    finally:
        reporter.uninstall()
    assert sys.excepthook is hook
