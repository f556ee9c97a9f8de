"""Tools that do what a labeller expects: fill under the click (with a preview), accept
prediction before and after it arrives, R asks about unlabelled pixels, editing a reviewed
image reopens it, GrabCut says what it found and is refined by strokes, and the view
settings go with the autosave."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QMessageBox, QPushButton

from segstudio.core.labelset import UNLABELED, preset
from segstudio.gui.canvas import Layer, Tool
from segstudio.gui.main_window import MainWindow
from segstudio.io.project import ImageStatus, Project
from segstudio.model.arch import ArchSpec
from segstudio.model.files import new_model, save_model
from tests.gui.conftest import click, drag, make_images, open_window, view_pos


@pytest.fixture
def halves(tmp_path: Path) -> Path:
    """One unlabelled image: the left half dark, the right half bright (a little noise)."""
    folder = tmp_path / "halves"
    folder.mkdir()
    rng = np.random.default_rng(0)
    img = np.zeros((90, 120, 3), np.uint8)
    img[:, :60] = (40, 45, 50)
    img[:, 60:] = (200, 190, 180)
    img = (img + rng.integers(0, 6, img.shape)).astype(np.uint8)
    Image.fromarray(img).save(folder / "halves.png")
    return folder


def status(win: MainWindow) -> str:
    return win.statusBar().currentMessage()


# -- fill ------------------------------------------------------------------------------------


def test_a_click_on_the_left_half_fills_only_the_left_half(qtbot, halves: Path) -> None:
    win = open_window(qtbot, halves)
    doc = win.doc
    win.palette.choose(8)
    win.action("actionToolFill").trigger()
    fill = win.editing.fill
    assert fill.options.isVisible()  # Fill by / tolerance show with the tool
    # the preview: hovering shows the region a click would fill
    QTest.mouseMove(win.canvas.viewport(), view_pos(win, 20, 40))
    qtbot.waitUntil(lambda: fill.preview.isVisible())
    assert fill.preview.pos().x() == 0 and fill.preview.pixmap().width() == 60
    assert (doc.labels == UNLABELED).all()  # a preview changes nothing
    click(win, 20, 40)
    assert (doc.labels[:, :60] == 8).all()
    assert (doc.labels[:, 60:] == UNLABELED).all()
    assert "Filled 5,400 pixels" in status(win)
    qtbot.waitUntil(lambda: not fill.preview.isVisible())  # a click there changes nothing now
    QTest.keySequence(win, QKeySequence("Ctrl+Z"))
    assert (doc.labels == UNLABELED).all()  # one undo step
    # another tool: no options, no preview
    win.action("actionToolBrush").trigger()
    assert not fill.options.isVisible() and not fill.preview.isVisible()
    win.close()


def test_fill_follows_the_prediction_when_it_is_shown_or_chosen(qtbot, halves: Path) -> None:
    win = open_window(qtbot, halves)
    doc = win.doc
    pred = np.zeros(doc.labels.shape, np.uint8)
    pred[20:70, 30:100] = 2  # a predicted object across both colour halves
    win.editing.set_prediction("halves.png", pred, np.full(pred.shape, 200, np.uint8))
    win.palette.choose(2)
    win.action("actionToolFill").trigger()
    assert win.canvas.layers[Layer.PREDICTION].isVisible()
    click(win, 50, 40)  # "as shown": the prediction is on screen, so it is followed
    np.testing.assert_array_equal(doc.labels == 2, pred == 2)
    QTest.keySequence(win, QKeySequence("Ctrl+Z"))
    win.editing.fill.by.setCurrentIndex(win.editing.fill.by.findData("colour"))
    click(win, 50, 40)
    assert (doc.labels[:, :60] == 2).all() and doc.labels[40, 80] == UNLABELED
    win.close()


def test_brackets_change_the_fill_tolerance_with_the_fill_tool(window: MainWindow) -> None:
    window.action("actionToolFill").trigger()
    tolerance = window.editing.fill.tolerance
    radius, before = window.canvas.brush_radius, tolerance.value()
    QTest.keyClick(window, Qt.Key.Key_BracketRight)
    assert tolerance.value() > before and window.canvas.brush_radius == radius
    assert "Fill tolerance" in status(window)
    QTest.keyClick(window, Qt.Key.Key_BracketLeft)
    QTest.keyClick(window, Qt.Key.Key_BracketLeft)
    assert tolerance.value() < before


# -- accept prediction -----------------------------------------------------------------------


def test_accept_before_the_prediction_arrives_waits_for_it(window: MainWindow) -> None:
    doc = window.doc
    assert doc.prediction is None
    window.editing.prediction_request = lambda _doc: None  # "one is on its way"
    assert window.action("actionAcceptPrediction").isEnabled()
    QTest.keySequence(window, QKeySequence("Shift+A"))
    assert "no prediction yet" in status(window)
    assert (doc.labels == UNLABELED).all()
    pred = np.full(doc.labels.shape, 3, np.uint8)
    window.editing.set_prediction(doc.name, pred, np.zeros_like(pred))  # it arrives
    assert (doc.labels == 3).all()
    assert "Accepted the prediction into 10,800" in status(window)
    assert doc.editor.undo_name == "Accept prediction"


def test_accept_and_r_right_after_moving_on_mean_the_next_image(window: MainWindow, qtbot) -> None:
    """Shift+A pressed while the next image is still opening (the last one is on screen
    until then) is for the next image: the one left keeps its labels, the next one gets
    its prediction once it shows; R then does not mark the one left."""
    first = window.doc
    window.editing.prediction_request = lambda _doc: None  # "one is on its way"
    pred = np.full(first.labels.shape, 3, np.uint8)
    window.editing.set_prediction(first.name, pred, np.zeros_like(pred))
    QTest.keyClick(window, Qt.Key.Key_PageDown)
    assert window.editing.loading is not None and window.doc is first  # still opening
    QTest.keySequence(window, QKeySequence("Shift+A"))
    QTest.keyClick(window, Qt.Key.Key_R)
    assert (first.labels == UNLABELED).all()
    assert "Still opening" in status(window)
    qtbot.waitUntil(lambda: window.doc is not first)
    second = window.doc
    assert window.editing.status(first.name) is not ImageStatus.REVIEWED
    assert window.editing.review.on_open is None and window.editing.review.waiting is second
    pred2 = np.full(second.labels.shape, 4, np.uint8)
    window.editing.set_prediction(second.name, pred2, np.zeros_like(pred2))
    qtbot.waitUntil(lambda: bool((second.labels == 4).all()))
    assert (first.labels == UNLABELED).all()


def test_accept_without_a_model_says_why(window: MainWindow) -> None:
    QTest.keySequence(window, QKeySequence("Shift+A"))
    assert "No prediction to accept" in status(window) and "no model" in status(window)
    assert (window.doc.labels == UNLABELED).all()


def test_accept_after_the_prediction_arrived_says_how_much(window: MainWindow) -> None:
    doc = window.doc
    window.palette.choose(1)
    drag(window, [(10, 10), (30, 10)])
    pred = np.full(doc.labels.shape, 4, np.uint8)
    window.editing.set_prediction(doc.name, pred, np.zeros_like(pred))
    before = doc.unlabeled()
    QTest.keySequence(window, QKeySequence("Shift+A"))
    assert f"Accepted the prediction into {before:,} unlabelled pixels" in status(window)
    assert doc.labels[10, 20] == 1 and doc.labels[80, 100] == 4
    QTest.keySequence(window, QKeySequence("Shift+A"))
    assert "every pixel is labelled" in status(window)


def test_accept_with_a_real_model_predicts_then_accepts(qtbot, tmp_path: Path) -> None:
    model = new_model(ArchSpec("segnet", {"width": 0.5}), preset("camvid11"), seed=0)
    path = save_model(tmp_path / "segnet.safetensors", model)
    win = open_window(qtbot, make_images(tmp_path / "p", n=1))
    win.action("actionAutoPredict").setChecked(False)  # nothing predicts by itself
    win.prediction.set_model(path)
    assert win.doc.prediction is None
    QTest.keySequence(win, QKeySequence("Shift+A"))
    qtbot.waitUntil(lambda: not (win.doc.labels == UNLABELED).any(), timeout=60_000)
    qtbot.waitUntil(lambda: not win.jobs.running, timeout=10_000)
    np.testing.assert_array_equal(win.doc.labels, win.doc.prediction.labels)
    win.close()


# -- mark reviewed ---------------------------------------------------------------------------


def review_question(win: MainWindow, qtbot) -> QMessageBox:
    qtbot.waitUntil(lambda: win.editing.review.box is not None)
    box = win.editing.review.box
    assert box.isVisible() and box.objectName() == "reviewQuestion"
    return box


def press(box: QMessageBox, qtbot, name: str) -> None:
    button = box.findChild(QPushButton, name)
    assert button is not None, name
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def test_r_asks_when_pixels_are_unlabelled(window: MainWindow, qtbot) -> None:
    project, name = window.project, window.doc.name
    QTest.keyClick(window, Qt.Key.Key_R)
    box = review_question(window, qtbot)
    assert "10,800 pixels" in box.text() and "100.0 %" in box.text()
    assert not box.findChild(QPushButton, "reviewAcceptPrediction").isEnabled()  # none yet
    press(box, qtbot, "reviewCancel")
    assert project.record(name).status is not ImageStatus.REVIEWED
    QTest.keyClick(window, Qt.Key.Key_R)
    press(review_question(window, qtbot), qtbot, "reviewAnyway")
    assert project.record(name).status is ImageStatus.REVIEWED
    QTest.keyClick(window, Qt.Key.Key_R)  # reviewed: back to in progress, no question
    assert window.editing.review.box is None
    assert project.record(name).status is ImageStatus.IN_PROGRESS


def test_r_can_accept_the_prediction_for_the_unlabelled_pixels(window: MainWindow, qtbot) -> None:
    doc = window.doc
    window.palette.choose(1)
    drag(window, [(10, 10), (30, 10)])
    pred = np.full(doc.labels.shape, 5, np.uint8)
    window.editing.set_prediction(doc.name, pred, np.zeros_like(pred))
    QTest.keyClick(window, Qt.Key.Key_R)
    press(review_question(window, qtbot), qtbot, "reviewAcceptPrediction")
    assert doc.labels[10, 20] == 1 and doc.labels[80, 100] == 5
    assert window.project.record(doc.name).status is ImageStatus.REVIEWED
    np.testing.assert_array_equal(window.project.load_labels(doc.name), doc.labels)
    QTest.keyClick(window, Qt.Key.Key_R)
    QTest.keyClick(window, Qt.Key.Key_R)  # all labelled now: no question
    assert window.editing.review.box is None
    assert window.project.record(doc.name).status is ImageStatus.REVIEWED


def test_r_offers_a_prediction_that_arrives_while_it_asks(window: MainWindow, qtbot) -> None:
    doc = window.doc
    QTest.keyClick(window, Qt.Key.Key_R)
    box = review_question(window, qtbot)
    accept = box.findChild(QPushButton, "reviewAcceptPrediction")
    assert not accept.isEnabled()
    pred = np.full(doc.labels.shape, 5, np.uint8)
    window.editing.set_prediction(doc.name, pred, np.zeros_like(pred))  # it arrives
    assert accept.isEnabled() and "arrived" in box.informativeText()
    press(box, qtbot, "reviewAcceptPrediction")
    assert (doc.labels == 5).all()
    assert window.project.record(doc.name).status is ImageStatus.REVIEWED


def test_editing_a_reviewed_image_makes_it_in_progress(window: MainWindow, qtbot) -> None:
    doc = window.doc
    window.editing.toggle_reviewed()
    assert window.project.record(doc.name).status is ImageStatus.REVIEWED
    window.palette.choose(2)
    drag(window, [(40, 40), (50, 40)])
    row = window.images.model.row_of(doc.name)
    shown = window.images.model.data(window.images.model.index(row))
    assert "in progress" in shown  # the list says so at once
    assert "in progress again" in status(window)
    QTest.keySequence(window, QKeySequence("Ctrl+S"))
    assert window.project.record(doc.name).status is ImageStatus.IN_PROGRESS


# -- GrabCut ---------------------------------------------------------------------------------


def grabcut_settled(win: MainWindow) -> bool:
    return not win.editing.grabcut.workers.busy and status(win).startswith("GrabCut:")


def shift_drag(win: MainWindow, points: list[tuple[float, float]]) -> None:
    """A real left-button drag with Shift held."""
    vp, shift = win.canvas.viewport(), Qt.KeyboardModifier.ShiftModifier
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, shift, view_pos(win, *points[0]))
    for p in points[1:]:
        QTest.mouseMove(vp, view_pos(win, *p))
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, shift, view_pos(win, *points[-1]))


def test_grabcut_reports_and_refines_with_strokes(window: MainWindow, qtbot) -> None:
    doc = window.doc
    window.palette.choose(8)
    window.action("actionToolGrabCut").trigger()
    drag(window, [(30, 22), (60, 45), (92, 68)])  # a box around the red object
    qtbot.waitUntil(lambda: grabcut_settled(window), timeout=10_000)
    first = int((doc.labels == 8).sum())
    assert first > 600 and f"{first:,} pixels of Car" in status(window)
    assert "% of the box" in status(window) and "GrabCut…" not in status(window)
    assert window.canvas.grabcut_strokes  # drags refine now
    after_box = doc.labels.copy()
    assert after_box[25, 60] == UNLABELED  # the sky above the object is not taken
    # a plain drag: what GrabCut missed (say, that strip of sky belongs to the object)
    window.canvas.set_brush_radius(2)
    drag(window, [(45, 25), (75, 25)])
    qtbot.waitUntil(lambda: grabcut_settled(window) and doc.labels[25, 60] == 8, timeout=10_000)
    assert doc.editor.undo_name == "GrabCut refinement" and "(+" in status(window)
    after_more = doc.labels.copy()
    # Shift+drag: what it took wrongly (the same strip, after all)
    shift_drag(window, [(45, 25), (75, 25)])
    qtbot.waitUntil(
        lambda: grabcut_settled(window) and doc.labels[25, 60] == UNLABELED, timeout=10_000
    )
    assert "(-" in status(window) and (doc.labels[40:55, 50:70] == 8).all()
    # each refinement is one undo step, back to the result before it
    QTest.keySequence(window, QKeySequence("Ctrl+Z"))
    np.testing.assert_array_equal(doc.labels, after_more)
    assert not window.canvas.grabcut_strokes  # undo ends the refining
    QTest.keySequence(window, QKeySequence("Ctrl+Z"))
    np.testing.assert_array_equal(doc.labels, after_box)
    QTest.keySequence(window, QKeySequence("Ctrl+Z"))
    assert (doc.labels == UNLABELED).all()


def test_enter_ends_refining_and_the_next_drag_is_a_box(window: MainWindow, qtbot) -> None:
    window.palette.choose(8)
    window.action("actionToolGrabCut").trigger()
    drag(window, [(30, 22), (92, 68)])
    qtbot.waitUntil(lambda: grabcut_settled(window), timeout=10_000)
    assert window.canvas.grabcut_strokes
    QTest.keyClick(window.canvas, Qt.Key.Key_Return)
    assert not window.canvas.grabcut_strokes and "GrabCut done" in status(window)
    window.palette.choose(3)
    drag(window, [(30, 22), (92, 68)])  # a box again
    qtbot.waitUntil(
        lambda: grabcut_settled(window) and (window.doc.labels == 3).any(), timeout=10_000
    )


def test_grabcut_that_finds_nothing_says_so_and_clears_its_message(qtbot, tmp_path: Path) -> None:
    folder = tmp_path / "flat"
    folder.mkdir()
    Image.fromarray(np.full((90, 120, 3), 128, np.uint8)).save(folder / "flat.png")
    win = open_window(qtbot, folder)
    win.action("actionToolGrabCut").trigger()
    drag(win, [(30, 22), (92, 68)])
    qtbot.waitUntil(lambda: "found no object" in status(win), timeout=10_000)
    assert (win.doc.labels == UNLABELED).all()
    win.close()


def test_a_grabcut_result_for_an_image_left_is_dropped_quietly(window: MainWindow, qtbot) -> None:
    from tests.gui.conftest import show

    window.action("actionToolGrabCut").trigger()
    drag(window, [(30, 22), (92, 68)])
    show(qtbot, window, "img1.png")
    qtbot.waitUntil(lambda: not window.editing.grabcut.workers.busy, timeout=10_000)
    assert "GrabCut…" not in status(window)
    assert (window.doc.labels == UNLABELED).all()


# -- settings with the autosave ----------------------------------------------------------------


def test_class_brush_and_tool_are_saved_with_the_autosave(window: MainWindow, folder: Path) -> None:
    window.palette.choose(6)
    window.canvas.set_brush_radius(13)
    window.action("actionToolFill").trigger()
    window.editing.autosave()  # what the timer does every few seconds
    window.editing.saver.wait()
    stored = json.loads((folder / ".segstudio" / "settings.json").read_text())
    view = stored["settings"]["view"]
    assert view["class"] == 6 and view["brush_radius"] == 13 and view["tool"] == "FILL"
    # the window is still open (as after a kill -9); nothing changed: nothing written again
    calls = []
    window.editing.saver.call = calls.append
    window.editing.autosave()
    assert not calls


def test_the_tool_comes_back_with_the_project(qtbot, folder: Path) -> None:
    win = open_window(qtbot, folder)
    win.action("actionToolPolygon").trigger()
    win.close()
    with Project.open(folder) as project:
        assert project.get_setting("view")["tool"] == "POLYGON"
    again = open_window(qtbot, folder)
    assert again.canvas.tool is Tool.POLYGON and again.action("actionToolPolygon").isChecked()
    assert not again.action("actionToolBrush").isChecked()
    again.close()
