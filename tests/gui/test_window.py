"""The window, driven as a user would: real mouse events, shortcuts, save and reopen."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QListView, QListWidget, QPushButton

from segstudio.core.labelset import UNLABELED
from segstudio.gui.actions import ACTIONS
from segstudio.gui.canvas import Layer, Tool
from segstudio.gui.main_window import MainWindow
from segstudio.io.project import ImageStatus, Project
from tests.gui.conftest import click, drag, open_window, show


def test_open_folder_lists_images_and_shows_the_first(window: MainWindow) -> None:
    assert window.images.names() == ["img0.png", "img1.png", "img2.png"]
    assert window.doc is not None and window.doc.name == "img0.png"
    assert window.canvas.image_size == (90, 120)
    assert (window.doc.labels == UNLABELED).all()
    assert window.findChild(QListView, "imageList") is not None
    assert window.findChild(QListWidget, "classList").count() == 11  # CamVid-11 by default


def test_brush_stroke_paints_and_undo_redo(window: MainWindow) -> None:
    window.palette.choose(3)
    window.canvas.set_brush_radius(3)
    drag(window, [(20, 60), (40, 60), (60, 60)])
    labels = window.doc.labels
    assert labels[60, 20] == 3 and labels[60, 40] == 3 and labels[60, 60] == 3
    assert labels[10, 10] == UNLABELED
    painted = labels.copy()
    QTest.keySequence(window, QKeySequence("Ctrl+Z"))
    assert (window.doc.labels == UNLABELED).all()  # the whole drag was one step
    QTest.keySequence(window, QKeySequence("Ctrl+Shift+Z"))
    np.testing.assert_array_equal(window.doc.labels, painted)
    QTest.keySequence(window, QKeySequence("Ctrl+Z"))
    QTest.keySequence(window, QKeySequence("Ctrl+Y"))
    np.testing.assert_array_equal(window.doc.labels, painted)


def test_eraser_fill_polygon_eyedropper_and_lock(window: MainWindow, qtbot) -> None:
    doc = window.doc
    window.palette.choose(1)
    window.canvas.set_tool(Tool.POLYGON)
    for x, y in [(10, 10), (50, 10), (50, 40)]:
        click(window, x, y)
    QTest.keyClick(window.canvas, Qt.Key.Key_Return)
    assert doc.labels[15, 40] == 1 and doc.labels[35, 15] == UNLABELED
    # fill the unlabeled rest with class 2
    window.palette.choose(2)
    window.action("actionToolFill").trigger()
    assert window.canvas.tool is Tool.FILL
    window.editing.fill.tolerance.setValue(255)  # [part c] fill follows colours: any colour
    click(window, 100, 80)
    assert doc.labels[80, 100] == 2 and doc.labels[15, 40] == 1
    assert (doc.labels != UNLABELED).all()
    # eraser makes pixels unlabeled
    window.action("actionToolEraser").trigger()
    window.canvas.set_brush_radius(2)
    drag(window, [(100, 80), (101, 80)])
    assert doc.labels[80, 100] == UNLABELED
    # lock: painting class 4 changes only unlabeled pixels
    window.action("actionLockUnlabeled").trigger()
    window.palette.choose(4)
    window.action("actionToolBrush").trigger()
    window.canvas.set_brush_radius(6)
    drag(window, [(100, 80), (101, 80)])
    assert doc.labels[80, 100] == 4
    assert doc.labels[80, 108] == 2  # painted before: locked
    # eyedropper picks the class under the cursor
    window.action("actionToolEyedropper").trigger()
    click(window, 40, 15)
    assert window.palette.current() == 1


def test_grabcut_box_labels_the_object(window: MainWindow, qtbot) -> None:
    window.palette.choose(8)
    window.action("actionToolGrabCut").trigger()
    drag(window, [(30, 22), (60, 45), (92, 68)])
    qtbot.waitUntil(lambda: (window.doc.labels == 8).sum() > 200, timeout=10000)
    inside = window.doc.labels[35:55, 45:75]
    assert (inside == 8).mean() > 0.8
    assert window.doc.labels[5, 5] == UNLABELED


def test_save_close_reopen_restores_masks(qtbot, folder: Path) -> None:
    win = open_window(qtbot, folder)
    win.palette.choose(5)
    win.canvas.set_brush_radius(4)
    win.layers_panel.opacity[Layer.LABELS].setValue(80)
    win.layers_panel.outline[Layer.PREDICTION].setChecked(True)
    drag(win, [(10, 10), (70, 50)])
    painted = win.doc.labels.copy()
    QTest.keySequence(win, QKeySequence("Ctrl+S"))
    show(qtbot, win, "img1.png")
    win.close()
    with Project.open(folder) as project:
        assert project.record("img0.png").status is ImageStatus.IN_PROGRESS
    again = open_window(qtbot, folder)
    assert again.doc.name == "img1.png"  # where the user left off
    assert again.palette.current() == 5 and again.canvas.brush_radius == 4
    assert again.layers_panel.state[Layer.LABELS].opacity == 0.8
    assert again.layers_panel.state[Layer.PREDICTION].outline
    show(qtbot, again, "img0.png")
    np.testing.assert_array_equal(again.doc.labels, painted)
    again.close()


def test_autosave_after_idle(window: MainWindow, qtbot, folder: Path) -> None:
    window.palette.choose(2)
    drag(window, [(5, 5), (30, 30)])
    assert window.doc.editor.dirty
    qtbot.waitUntil(lambda: not window.doc.editor.dirty, timeout=5000)
    window.editing.saver.wait()
    with Project.open(folder) as project:
        stored = project.load_labels("img0.png")
    np.testing.assert_array_equal(stored, window.doc.labels)


def test_mark_reviewed_and_filter(window: MainWindow, qtbot) -> None:
    QTest.keyClick(window, Qt.Key.Key_R)
    # [part c] unlabelled pixels: R asks first (tests/gui/test_tools.py has the rest)
    qtbot.waitUntil(lambda: window.editing.review.box is not None)
    window.editing.review.box.findChild(QPushButton, "reviewAnyway").click()
    assert window.project.record("img0.png").status is ImageStatus.REVIEWED
    window.images.filter.setCurrentIndex(window.images.filter.findData(ImageStatus.REVIEWED))
    assert window.images.model.rowCount() == 1
    window.images.filter.setCurrentIndex(0)
    QTest.keySequence(window, QKeySequence("PgDown"))
    qtbot.waitUntil(lambda: window.doc.name == "img1.png")
    QTest.keySequence(window, QKeySequence("PgUp"))
    qtbot.waitUntil(lambda: window.doc.name == "img0.png")


def test_recolour_and_rename_class(window: MainWindow) -> None:
    window.palette.choose(0)
    window.palette.recolour((1, 2, 3))
    assert window.project.labelset.classes[0].color == (1, 2, 3)
    table = window.canvas.labels_item._table
    assert (int(table[0]) & 0xFFFFFF) != 0  # premultiplied, but not transparent
    with Project.open(window.project.folder) as p:
        assert p.labelset.classes[0].color == (1, 2, 3)


def test_delete_class_migrates_masks(window: MainWindow, qtbot) -> None:
    window.palette.choose(4)
    drag(window, [(10, 10), (20, 10)])
    window.palette.choose(6)
    drag(window, [(10, 40), (20, 40)])
    window.palette.choose(4)
    window.palette.delete(confirm=False)
    qtbot.waitUntil(lambda: window.project.labelset.num_classes == 10)
    qtbot.waitUntil(lambda: window.palette.isEnabled())
    labels = window.doc.labels
    assert labels[10, 15] == UNLABELED  # class 4 is gone
    assert labels[40, 15] == 5  # class 6 moved down to 5
    assert window.project.labelset.num_classes == 10
    assert window.project.load_labels("img0.png")[40, 15] == 5
    window.action("actionUndo").trigger()  # undo still works across the migration
    assert window.doc.labels[40, 15] == UNLABELED and window.doc.labels[10, 15] == UNLABELED


def test_every_action_has_name_and_shortcut(window: MainWindow) -> None:
    names = [
        a.objectName() for a in window.findChildren(QAction) if a.objectName().startswith("action")
    ]
    assert {s.name for s in ACTIONS} <= set(names)
    seen: dict[str, str] = {}
    for spec in ACTIONS:
        action = window.findChild(QAction, spec.name)
        assert action.shortcuts(), spec.name
        for key in action.shortcuts():
            text = key.toString()
            assert text not in seen, f"{spec.name} and {seen.get(text)} share {text}"
            seen[text] = spec.name
    window.action("actionShortcuts").trigger()
    # [part a] the help page lists every action (by its name and keys; no objectName column)
    assert {s.name for s in ACTIONS} <= window.shortcuts_dialog.action_names()


def test_keys_pick_classes_and_tools(window: MainWindow) -> None:
    QTest.keyClick(window, Qt.Key.Key_3)
    assert window.palette.current() == 2
    QTest.keyClick(window, Qt.Key.Key_E)
    assert window.canvas.tool is Tool.ERASER
    r = window.canvas.brush_radius
    QTest.keyClick(window, Qt.Key.Key_BracketRight)
    assert window.canvas.brush_radius > r


@pytest.mark.parametrize("kind", ["missing", "corrupt"])
def test_bad_image_gives_a_message_not_a_crash(qtbot, folder: Path, kind: str, monkeypatch) -> None:
    (folder / "zz_bad.png").write_bytes(b"not a png at all")
    from PySide6.QtWidgets import QMessageBox

    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: shown.append(a[2]))
    win = open_window(qtbot, folder)
    if kind == "missing":
        (folder / "zz_bad.png").unlink()
    win.images.select("zz_bad.png")
    # [part c] said in the status bar and marked in the list, never a dialog
    qtbot.waitUntil(lambda: "zz_bad.png cannot be read" in win.statusBar().currentMessage())
    assert not shown and win.images.broken("zz_bad.png")
    assert win.doc.name == "img0.png"  # still on the last good image
    win.close()


def test_thumbnails_arrive_in_the_background(window: MainWindow, qtbot) -> None:
    from PySide6.QtGui import QIcon

    model = window.images.model

    def icons() -> list[QIcon | None]:
        return [model.data(model.index(r), Qt.ItemDataRole.DecorationRole) for r in range(3)]

    icons()  # what the view does when it paints the rows
    qtbot.waitUntil(lambda: all(i is not None and not i.isNull() for i in icons()), timeout=10_000)
    size = icons()[0].availableSizes()[0]
    assert max(size.width(), size.height()) <= 40


def test_failed_save_keeps_the_labels_and_retries(window: MainWindow, qtbot, monkeypatch) -> None:
    from segstudio.core.errors import ProjectError

    real = Project.save_labels
    calls = {"n": 0}

    def flaky(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise ProjectError("disk full")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Project, "save_labels", flaky)
    window.palette.choose(1)
    drag(window, [(5, 5), (40, 5)])
    painted = window.doc.labels.copy()
    window.editing.save()
    window.editing.saver.wait()
    assert "img0.png" in window.editing.saver.failed
    qtbot.waitUntil(lambda: "Could not save img0.png" in window.statusBar().currentMessage())
    window.editing.toggle_reviewed()  # a failed save must never be marked reviewed...
    # ...but save_now retried, and the retry went through
    assert not window.editing.saver.failed
    np.testing.assert_array_equal(window.project.load_labels("img0.png"), painted)


def test_back_to_the_shown_image_drops_the_pending_load(window: MainWindow, qtbot) -> None:
    window.images.select("img1.png")
    window.images.select("img0.png")  # changed my mind at once
    qtbot.wait(400)
    assert window.doc.name == "img0.png"
    assert window.images.current_name() == "img0.png"


def test_space_cannot_press_palette_buttons_and_canvas_takes_focus(window: MainWindow) -> None:
    from PySide6.QtCore import QPointF
    from PySide6.QtGui import QEnterEvent
    from PySide6.QtWidgets import QAbstractButton, QApplication

    for button in window.palette.findChildren(QAbstractButton):
        assert button.focusPolicy() == Qt.FocusPolicy.NoFocus, button.objectName()
    window.palette.list.setFocus()
    pos = QPointF(10, 10)
    QApplication.sendEvent(window.canvas, QEnterEvent(pos, pos, pos))
    assert window.canvas.hasFocus()


def test_a_lost_mouse_release_ends_the_stroke(window: MainWindow) -> None:
    from tests.gui.conftest import view_pos

    vp = window.canvas.viewport()
    window.palette.choose(2)
    QTest.mousePress(
        vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, view_pos(window, 10, 10)
    )
    QTest.mouseRelease(window, Qt.MouseButton.LeftButton)  # the release lands elsewhere
    QTest.mouseMove(vp, view_pos(window, 60, 60))  # hovering, no button held
    assert window.doc.labels[60, 60] == UNLABELED
    assert not window.doc.stroking and not window.doc.editor.in_step
    assert window.doc.editor.can_undo


def test_reorder_keeps_the_chosen_class_and_hidden_ones(window: MainWindow, qtbot) -> None:
    window.palette.choose(4)
    name = window.project.labelset.names[4]
    window.palette.list.item(6).setCheckState(Qt.CheckState.Unchecked)  # hide class 6
    hidden_name = window.project.labelset.names[6]
    drag(window, [(5, 5), (20, 5)])
    window.palette.move(+1)
    qtbot.waitUntil(lambda: window.palette.isEnabled() and window.project.labelset.names[5] == name)
    assert window.palette.current() == 5  # still the same class
    names = window.project.labelset.names
    assert {names[i] for i in window.palette.hidden()} == {hidden_name}


def test_no_display_is_explained_not_a_qt_abort() -> None:
    import sys

    from segstudio.gui.app import display_problem

    if not sys.platform.startswith("linux"):
        pytest.skip("Linux display check")
    assert "no display" in display_problem({})
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}) is None
    problem = display_problem({"DISPLAY": ":0"})
    assert problem is None or ("apt-get install " in problem and "libxcb-cursor0" in problem)
