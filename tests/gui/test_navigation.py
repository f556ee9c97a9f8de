"""Navigation past unreadable files (marked in the list, passed over with a note, never a
dialog), and an image list whose thumbnails are sharp at 2x and whose rows line up."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QEvent, QSize, Qt
from PySide6.QtGui import QIcon, QKeySequence
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QMessageBox

from segstudio.gui.image_list import PAD, THUMB, ImageListModel
from segstudio.gui.main_window import MainWindow
from tests.gui.conftest import make_images, open_window, show


@pytest.fixture
def no_dialogs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fail loudly instead of blocking if anything opens a message box."""
    shown: list[str] = []

    def record(*args: object, **_kwargs: object) -> QMessageBox.StandardButton:
        shown.append(str(args[2]) if len(args) > 2 else "a message box")
        return QMessageBox.StandardButton.Ok

    for name in ("warning", "critical", "information", "question"):
        monkeypatch.setattr(QMessageBox, name, record)
    monkeypatch.setattr(QMessageBox, "exec", lambda self: shown.append(self.text()) or 0)
    return shown


@pytest.fixture
def broken_middle(tmp_path: Path) -> Path:
    """img0.png, img1.png (not an image at all), img2.png."""
    folder = make_images(tmp_path / "broken", n=3)
    (folder / "img1.png").write_bytes(b"this is not a png")
    return folder


def status(win: MainWindow) -> str:
    return win.statusBar().currentMessage()


def broken_reason(win: MainWindow, name: str) -> str | None:
    model = win.images.model
    return model.data(model.index(model.row_of(name)), ImageListModel.BrokenRole)


def test_page_down_passes_over_a_broken_file(qtbot, broken_middle: Path, no_dialogs) -> None:
    win = open_window(qtbot, broken_middle)
    assert win.doc.name == "img0.png"
    QTest.keySequence(win, QKeySequence("PgDown"))
    qtbot.waitUntil(lambda: win.doc.name == "img2.png", timeout=10_000)
    assert win.images.current_name() == "img2.png"
    assert broken_reason(win, "img1.png")  # marked, with the reason
    model = win.images.model
    row = model.index(model.row_of("img1.png"))
    assert "cannot be read" in model.data(row, Qt.ItemDataRole.ToolTipRole)
    assert "cannot be read" in model.data(row, ImageListModel.StatusRole)
    assert model.data(row, Qt.ItemDataRole.ForegroundRole).color().red() > 200
    assert "img1.png" in status(win)
    # back: now it is known, so Page Up passes over it at once
    QTest.keySequence(win, QKeySequence("PgUp"))
    qtbot.waitUntil(lambda: win.doc.name == "img0.png", timeout=10_000)
    assert "Skipped img1.png" in status(win)
    assert not no_dialogs
    win.close()


def test_choosing_a_broken_file_keeps_the_image_shown(qtbot, broken_middle: Path, no_dialogs):
    win = open_window(qtbot, broken_middle)
    win.images.select("img1.png")  # a click on its row
    qtbot.waitUntil(lambda: "img1.png cannot be read" in status(win), timeout=10_000)
    assert win.doc.name == "img0.png" and win.images.current_name() == "img0.png"
    assert not no_dialogs
    # it tries again when asked again: the file was fixed meanwhile
    make_images(broken_middle, n=2)
    win.images.select("img1.png")
    qtbot.waitUntil(lambda: win.doc.name == "img1.png", timeout=10_000)
    assert broken_reason(win, "img1.png") is None
    win.close()


def test_a_broken_first_image_opens_the_next_readable_one(qtbot, tmp_path: Path, no_dialogs):
    folder = make_images(tmp_path / "first", n=3)
    (folder / "img0.png").write_bytes(b"")
    win = open_window(qtbot, folder)
    assert win.doc.name == "img1.png"
    assert broken_reason(win, "img0.png")
    assert not no_dialogs
    win.close()


def test_only_broken_files_after_it_stays_and_says_so(qtbot, tmp_path: Path, no_dialogs) -> None:
    folder = make_images(tmp_path / "tail", n=3)
    (folder / "img1.png").write_bytes(b"x")
    (folder / "img2.png").write_bytes(b"y")
    win = open_window(qtbot, folder)
    QTest.keySequence(win, QKeySequence("PgDown"))
    qtbot.waitUntil(lambda: "no readable image after" in status(win), timeout=10_000)
    assert win.doc.name == "img0.png" and win.images.current_name() == "img0.png"
    QTest.keySequence(win, QKeySequence("PgDown"))  # known now: no load, just the note
    assert "no readable image after" in status(win) and win.doc.name == "img0.png"
    assert not no_dialogs
    win.close()


def test_a_broken_thumbnail_marks_the_row_before_it_is_opened(qtbot, broken_middle: Path) -> None:
    win = open_window(qtbot, broken_middle)
    model = win.images.model
    for r in range(3):
        model.data(model.index(r), Qt.ItemDataRole.DecorationRole)  # as the view paints
    qtbot.waitUntil(lambda: broken_reason(win, "img1.png") is not None, timeout=10_000)
    win.close()


def test_thumbnails_are_square_at_the_screen_pixel_ratio(window: MainWindow, qtbot) -> None:
    model = window.images.model
    model.pixel_ratio = lambda: 2.0  # a 2x screen ...
    window.images.event(QEvent(QEvent.Type.DevicePixelRatioChange))  # ... the window moved to

    def icon() -> QIcon | None:
        return model.data(model.index(0), Qt.ItemDataRole.DecorationRole)

    icon()
    qtbot.waitUntil(lambda: icon() is not None and not icon().isNull(), timeout=10_000)
    pixmap = icon().pixmap(QSize(THUMB, THUMB), 2.0)  # what a 2x paint asks for
    assert pixmap.devicePixelRatio() == 2.0
    assert (pixmap.width(), pixmap.height()) == (2 * THUMB, 2 * THUMB)  # device pixels
    # every row is as tall as a thumbnail and its padding, whatever it shows
    view = window.images.view
    heights = {view.visualRect(model.index(r)).height() for r in range(model.rowCount())}
    assert heights == {THUMB + 2 * PAD}


def test_the_list_shows_the_status_under_the_name(window: MainWindow, qtbot) -> None:
    show(qtbot, window, "img1.png")
    model = window.images.model
    idx = model.index(model.row_of("img1.png"))
    assert model.data(idx, ImageListModel.NameRole) == "img1.png"
    assert model.data(idx, ImageListModel.StatusRole) == "unlabeled"
