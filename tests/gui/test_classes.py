"""The class palette and its keys: buttons pressed with real clicks, the merge dialog's
safe defaults, a new class chosen with a colour unlike the others, every class
reachable from the keyboard, and pixel counts that follow the brush."""

from __future__ import annotations

import logging

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QAbstractButton, QColorDialog, QDialog, QInputDialog, QListWidget

from segstudio.core.colours import distinct_color, srgb_to_lab
from segstudio.core.labelset import UNLABELED, preset
from segstudio.gui.class_counts import BUDGET_PX, TILE, TileCounts
from segstudio.gui.class_dialogs import ClassPicker, MergeDialog
from segstudio.gui.main_window import MainWindow
from tests.gui.conftest import drag


def _button(window: MainWindow, name: str) -> QAbstractButton:
    button = window.palette.findChild(QAbstractButton, name)
    assert button is not None, name
    return button


def _click(qtbot, window: MainWindow, name: str) -> None:
    qtbot.mouseClick(_button(window, name), Qt.MouseButton.LeftButton)


# -- the palette's buttons --------------------------------------------------------------------


def test_colour_button_opens_a_colour_dialog_and_recolours(
    window: MainWindow, qtbot, monkeypatch, caplog
) -> None:
    asked = []

    def get_color(initial, parent, title, *args):
        asked.append((initial.getRgb()[:3], title))
        return QColor(10, 200, 30)

    monkeypatch.setattr(QColorDialog, "getColor", staticmethod(get_color))
    window.palette.choose(3)
    old = window.project.labelset.classes[3].color
    with caplog.at_level(logging.WARNING):
        _click(qtbot, window, "classRecolour")
    assert asked == [(old, f"Colour of {window.project.labelset.names[3]}")]
    assert window.project.labelset.classes[3].color == (10, 200, 30)
    assert "colour must be 3 integers" not in caplog.text


def test_colour_dialog_cancelled_changes_nothing(window: MainWindow, qtbot, monkeypatch) -> None:
    monkeypatch.setattr(QColorDialog, "getColor", staticmethod(lambda *a: QColor()))
    before = window.project.labelset
    _click(qtbot, window, "classRecolour")
    assert window.project.labelset == before


def test_merge_button_asks_for_a_target_with_nothing_chosen_and_cancel_default(
    window: MainWindow, qtbot, monkeypatch
) -> None:
    seen = {}

    def exec_(dialog: MergeDialog) -> int:
        seen["targets"] = [dialog.list.item(r).text() for r in range(dialog.list.count())]
        seen["selected"] = dialog.list.selectedItems()
        seen["merge_enabled"] = dialog.merge_button.isEnabled()
        seen["cancel_default"] = dialog.cancel_button.isDefault()
        seen["merge_default"] = dialog.merge_button.isDefault()
        return QDialog.DialogCode.Rejected

    monkeypatch.setattr(MergeDialog, "exec", exec_)
    window.palette.choose(2)
    names = window.project.labelset.names
    _click(qtbot, window, "classMerge")
    assert seen["targets"] == [n for i, n in enumerate(names) if i != 2]  # never itself
    assert seen["selected"] == [] and not seen["merge_enabled"]
    assert seen["cancel_default"] and not seen["merge_default"]
    assert window.project.labelset.names == names  # cancelled: nothing merged


def test_enter_in_the_merge_dialog_cancels(qtbot) -> None:
    ls = preset("camvid11")
    dialog = MergeDialog(ls.names, [c.color for c in ls.classes], 0)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    assert dialog.target() is None
    QTest.keyClick(dialog, Qt.Key.Key_Return)
    assert dialog.result() == QDialog.DialogCode.Rejected
    # choosing a target enables Merge and names the class
    dialog.list.item(2).setSelected(True)
    assert dialog.merge_button.isEnabled() and dialog.target() == 3  # class 0 is left out


def test_merge_into_the_chosen_target_migrates_masks(
    window: MainWindow, qtbot, monkeypatch
) -> None:
    window.palette.choose(4)
    drag(window, [(10, 10), (20, 10)])
    names = window.project.labelset.names

    def exec_(dialog: MergeDialog) -> int:
        dialog.list.item(names.index("Car") - 1).setSelected(True)  # below class 4: one less
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(MergeDialog, "exec", exec_)
    _click(qtbot, window, "classMerge")
    qtbot.waitUntil(lambda: window.project.labelset.num_classes == len(names) - 1)
    qtbot.waitUntil(window.palette.isEnabled)
    car = window.project.labelset.names.index("Car")
    assert names[4] not in window.project.labelset.names
    assert window.doc.labels[10, 15] == car


def test_delete_asks_with_no_as_the_default(window: MainWindow, qtbot, monkeypatch) -> None:
    from PySide6.QtWidgets import QMessageBox

    asked = []

    def question(parent, title, text, buttons, default):
        asked.append(default)
        return QMessageBox.StandardButton.No

    monkeypatch.setattr(QMessageBox, "question", staticmethod(question))
    n = window.project.labelset.num_classes
    _click(qtbot, window, "classDelete")
    assert asked == [QMessageBox.StandardButton.No]
    assert window.project.labelset.num_classes == n


# -- a new class --------------------------------------------------------------------------------


def test_added_class_is_chosen_shown_and_unlike_the_others(
    window: MainWindow, qtbot, monkeypatch
) -> None:
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *a, **k: ("Cells", True)))
    window.palette.choose(1)
    _click(qtbot, window, "classAdd")
    ls = window.project.labelset
    assert ls.names[-1] == "Cells"
    assert window.palette.current() == ls.num_classes - 1
    new = ls.classes[-1].color
    others = [c.color for c in ls.classes[:-1]] + [ls.unlabeled_color]
    gap = np.linalg.norm(srgb_to_lab(np.array(others)) - srgb_to_lab(np.array(new)), axis=1)
    assert gap.min() > 40  # far from every colour in CIELAB (2.3 is a just-visible step)
    lst = window.findChild(QListWidget, "classList")
    item = lst.item(ls.num_classes - 1)
    assert lst.visualItemRect(item).intersects(lst.viewport().rect())  # scrolled into view


def test_distinct_color_maximises_the_smallest_gap() -> None:
    taken = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (0, 0, 0)]
    new = distinct_color(taken)
    lab_taken, lab_new = srgb_to_lab(np.array(taken)), srgb_to_lab(np.array(new))
    gap = np.linalg.norm(lab_taken - lab_new, axis=1).min()
    # no other candidate of a coarse grid does better
    grid = np.stack(np.meshgrid(*[np.linspace(0, 255, 6)] * 3, indexing="ij"), -1).reshape(-1, 3)
    lab = srgb_to_lab(grid)
    ok = (lab[:, 0] > 30) & (lab[:, 0] < 92)
    best = np.linalg.norm(lab[ok][:, None] - lab_taken[None], axis=-1).min(axis=1).max()
    assert gap >= best - 1e-6
    assert distinct_color(taken) == new  # deterministic
    assert new not in taken


# -- keys and the quick picker --------------------------------------------------------------


def test_key_0_picks_the_tenth_class(window: MainWindow) -> None:
    QTest.keyClick(window, Qt.Key.Key_0)
    assert window.palette.current() == 9
    QTest.keyClick(window, Qt.Key.Key_1)
    assert window.palette.current() == 0
    texts = [window.palette.list.item(i).text() for i in (0, 9, 10)]
    assert texts[0].startswith("1 ") and texts[1].startswith("0 ")
    assert not texts[2][0].isdigit()  # the 11th has no key


def _open_picker(window: MainWindow, qtbot) -> ClassPicker:
    QTest.keyClick(window, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)
    picker = window.classes.picker
    assert picker is not None
    qtbot.waitUntil(picker.isVisible)
    return picker


def test_quick_picker_filters_and_enter_chooses(window: MainWindow, qtbot) -> None:
    picker = _open_picker(window, qtbot)
    assert picker.objectName() == "classPicker"
    assert len(picker.visible_ids()) == window.project.labelset.num_classes
    QTest.keyClicks(picker.filter, "bicy")
    names = window.project.labelset.names
    assert [names[i] for i in picker.visible_ids()] == ["Bicyclist"]
    QTest.keyClick(picker.filter, Qt.Key.Key_Return)
    assert window.palette.current() == names.index("Bicyclist")
    qtbot.waitUntil(lambda: not picker.isVisible())


def test_quick_picker_reaches_classes_past_the_tenth(window: MainWindow, qtbot) -> None:
    many = preset("camvid32")
    window.palette.use_labelset(many, confirm=False)
    qtbot.waitUntil(lambda: window.project.labelset.num_classes == many.num_classes > 10)
    qtbot.waitUntil(window.palette.isEnabled)
    picker = _open_picker(window, qtbot)
    QTest.keyClicks(picker.filter, "tr")  # several matches: arrows move among them
    ids = picker.visible_ids()
    assert len(ids) >= 2
    QTest.keyClick(picker.filter, Qt.Key.Key_Down)
    QTest.keyClick(picker.filter, Qt.Key.Key_Return)
    assert window.palette.current() == ids[1]
    # Esc closes without choosing
    picker = _open_picker(window, qtbot)
    QTest.keyClick(picker.filter, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not picker.isVisible())
    assert window.palette.current() == ids[1]


# -- pixel counts ---------------------------------------------------------------------------


def test_counts_follow_the_brush_and_undo(window: MainWindow, qtbot) -> None:
    palette, doc = window.palette, window.doc
    h, w = doc.labels.shape
    qtbot.waitUntil(lambda: palette.count(UNLABELED) == h * w)
    assert palette.count(3) == 0
    window.palette.choose(3)
    window.canvas.set_brush_radius(4)
    drag(window, [(20, 40), (60, 40), (90, 50)])
    painted = int(np.count_nonzero(doc.labels == 3))
    assert painted > 0
    qtbot.waitUntil(lambda: palette.count(3) == painted)
    assert palette.count(UNLABELED) == h * w - painted
    assert "Labelled" in palette.summary.text()
    assert f"{painted:,}" in palette.list.item(3).toolTip()
    window.action("actionUndo").trigger()
    qtbot.waitUntil(lambda: palette.count(3) == 0)


def test_tile_counts_match_a_full_count_after_scattered_edits() -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 5, (3 * TILE + 17, 2 * TILE + 5), dtype=np.uint8)
    counts = TileCounts(labels.shape)
    assert counts.pending
    while not counts.work(labels, budget_px=TILE * TILE):
        pass
    np.testing.assert_array_equal(counts.total, np.bincount(labels.ravel(), minlength=256))
    for _ in range(20):
        y, x = rng.integers(0, labels.shape[0] - 40), rng.integers(0, labels.shape[1] - 40)
        labels[y : y + 40, x : x + 40] = rng.integers(0, 256)
        counts.mark(y, x, y + 40, x + 40)
        assert counts.dirty.sum() <= 4  # only the tiles the edit touched
        counts.work(labels)
    np.testing.assert_array_equal(counts.total, np.bincount(labels.ravel(), minlength=256))


def test_counting_a_big_image_is_sliced() -> None:
    labels = np.full((3000, 4000), UNLABELED, np.uint8)
    counts = TileCounts(labels.shape)
    counts.work(labels)  # one slice: a bounded share of the image, not all of it
    assert counts.pending
    assert int(counts.total.sum()) <= BUDGET_PX + TILE * TILE < labels.size
