"""Export and import from the window: in a worker, whole or not at all."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QDialogButtonBox, QMessageBox, QPushButton

from segstudio.core.labelset import preset
from segstudio.gui.dataset_dialogs import ExportChoice, ExportDialog, ImportChoice
from segstudio.io.project import ImageStatus, Project
from tests.gui.conftest import make_images, open_window, top_level_widgets


@pytest.fixture
def warnings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The texts of the warning boxes the window shows (none opens); information boxes
    are passed over."""
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: shown.append(a[2]))
    monkeypatch.setattr(QMessageBox, "information", lambda *a, **k: None)
    return shown


def _reviewed_project(folder: Path) -> Path:
    make_images(folder, n=4, size=(60, 80))
    with Project.open(folder) as project:
        project.scan()
        project.set_labelset(preset("camvid11"))
        for i in range(3):
            labels = np.full((60, 80), 255, np.uint8)
            labels[: 30 + i] = 0
            labels[40:, 10:50] = 3
            project.save_labels(f"img{i}.png", labels)
            project.set_status(f"img{i}.png", ImageStatus.REVIEWED)
    return folder


def test_export_then_import_into_a_new_project(qtbot, tmp_path: Path, monkeypatch) -> None:
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "information", lambda *a, **k: shown.append(a[2]))
    src = _reviewed_project(tmp_path / "src")
    win = open_window(qtbot, src)
    out = tmp_path / "dataset"
    options = {"format": "camvid", "split": (0.67, 0.33, 0.0), "seed": 1}
    win.datasets.export_dataset(ExportChoice(out, options))
    qtbot.waitUntil(lambda: not win.jobs.running, timeout=30_000)
    assert shown and "Exported 3 image(s)" in shown[-1]
    assert "img3.png" in shown[-1]  # not reviewed: listed as not exported, never silently
    assert (out / "train.txt").is_file() and (out / "trainannot").is_dir()
    win.close()

    dst = make_images(tmp_path / "dst", n=0)
    win2 = open_window_empty(qtbot, dst)
    win2.datasets.import_dataset(ImportChoice(out, "camvid", None, None))
    qtbot.waitUntil(lambda: not win2.jobs.running, timeout=30_000)
    # honest counts: the masks came with new images
    assert "3 masks imported as reviewed labels for 0 existing images, 3 new images." in shown[-1]
    records = win2.project.images()
    assert len(records) == 3 and all(r.status is ImageStatus.REVIEWED for r in records)
    with Project.open(src) as a:
        for r in records:
            np.testing.assert_array_equal(win2.project.load_labels(r.name), a.load_labels(r.name))
    assert win2.images.model.rowCount() == 3  # the list shows the imported images
    win2.close()


def open_window_empty(qtbot, folder: Path):
    from segstudio.gui.main_window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    assert win.open_folder(folder)
    return win


def test_import_into_the_project_that_has_the_images_counts_them_as_existing(
    qtbot, tmp_path: Path, monkeypatch
) -> None:
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "information", lambda *a, **k: shown.append(a[2]))
    src = _reviewed_project(tmp_path / "src")
    win = open_window(qtbot, src)
    out = tmp_path / "dataset"
    win.datasets.export_dataset(ExportChoice(out, {"format": "index", "split": (1, 0, 0)}))
    qtbot.waitUntil(lambda: not win.jobs.running, timeout=30_000)
    win.close()
    dst = tmp_path / "dst"  # the same images, without labels
    dst.mkdir()
    for i in range(4):
        shutil.copy(src / f"img{i}.png", dst / f"img{i}.png")
    win = open_window(qtbot, dst)
    win.datasets.import_dataset(ImportChoice(out, "index", None, None))
    qtbot.waitUntil(lambda: not win.jobs.running, timeout=30_000)
    assert "3 masks imported as reviewed labels for 3 existing images, 0 new images." in shown[-1]
    assert len(win.project.images()) == 4
    win.close()


def _answer(steps: list) -> None:
    """Answer modal windows as they appear, in order: each step is (find, fill); ``fill``
    (or None) sets the window's fields, then a real click on the button ``find`` returns."""
    todo = list(steps)

    def attempt() -> None:
        if not todo:
            return
        find, fill = todo[0]
        for widget in top_level_widgets():
            button = find(widget) if widget.isVisible() else None
            if button is not None:
                if fill is not None:
                    fill(widget)
                todo.pop(0)
                QTest.mouseClick(button, Qt.MouseButton.LeftButton)
                break
        QTimer.singleShot(20, attempt)

    QTimer.singleShot(0, attempt)


def _export_button(widget):
    if isinstance(widget, ExportDialog):
        box = widget.findChild(QDialogButtonBox)
        return box.button(QDialogButtonBox.StandardButton.Ok)
    return None


def _button(text: str):
    def find(widget):
        if isinstance(widget, QMessageBox):
            for button in widget.findChildren(QPushButton):
                if button.text() == text:
                    return button
        return None

    return find


def test_export_dialog_keeps_its_choices_and_offers_replace_itself(
    qtbot, tmp_path: Path, warnings: list[str]
) -> None:
    src = _reviewed_project(tmp_path / "src")
    out = tmp_path / "full"
    out.mkdir()
    (out / "old.txt").write_text("earlier export")
    win = open_window(qtbot, src)

    def fill(dialog: ExportDialog) -> None:
        dialog.format.setCurrentIndex(dialog.format.findData("voc"))
        dialog.out.setText(str(out))
        dialog.shares[0].setValue(0.5)  # 0.5 + 0.1 + 0.1: the shares do not sum to 1

    seen = []

    def check_kept_then_fix(dialog: ExportDialog) -> None:
        seen.append((dialog.format.currentData(), dialog.out.text(), dialog.shares[0].value()))
        dialog.shares[0].setValue(0.8)

    _answer(
        [
            (_export_button, fill),  # 1. wrong shares: said, the dialog opens again ...
            (_export_button, check_kept_then_fix),  # ... with every choice kept
            (_button("Replace"), None),  # 2. the folder holds a file: Replace, offered here
        ]
    )
    win.datasets.export_dataset()
    assert warnings and "sum to 1" in warnings[0]
    assert seen == [("voc", str(out), 0.5)]
    assert win.jobs.kind is not None  # replaced, so the export runs
    qtbot.waitUntil(lambda: not win.jobs.running, timeout=30_000)
    assert not (out / "old.txt").exists() and (out / "JPEGImages").is_dir()
    assert all("--overwrite" not in w for w in warnings)
    # the next export opens with the same choices
    dialog = win.datasets.export_dialog(win.project)
    assert dialog.format.currentData() == "voc" and dialog.out.text() == str(out)
    win.close()


def test_a_failed_export_opens_the_dialog_again_with_its_choices(
    qtbot, tmp_path: Path, warnings: list[str]
) -> None:
    folder = make_images(tmp_path / "nothing-reviewed", n=2)
    win = open_window(qtbot, folder)
    out = tmp_path / "out"
    seen: list[str] = []

    def fill(dialog: ExportDialog) -> None:
        dialog.out.setText(str(out))

    def cancel_button(widget):
        if isinstance(widget, ExportDialog):
            seen.append(widget.out.text())
            return widget.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Cancel)
        return None

    _answer([(_export_button, fill), (cancel_button, None)])
    win.datasets.export_dataset()
    qtbot.waitUntil(lambda: not win.jobs.running, timeout=30_000)
    qtbot.waitUntil(lambda: bool(seen), timeout=10_000)  # the dialog, again
    assert warnings and "nothing to export" in warnings[0]
    assert seen == [str(out)]
    qtbot.waitUntil(lambda: not win.datasets.export_dialog(win.project).isVisible())
    win.close()


def _dialog_button(cls, which=QDialogButtonBox.StandardButton.Ok):
    def find(widget):
        if isinstance(widget, cls):
            return widget.findChild(QDialogButtonBox).button(which)
        return None

    return find


def test_a_failed_import_opens_the_dialog_again_and_names_the_checkbox(
    qtbot, tmp_path: Path, warnings: list[str]
) -> None:
    from segstudio.gui.dataset_dialogs import ImportDialog

    src = _reviewed_project(tmp_path / "src")
    win = open_window(qtbot, src)
    out = tmp_path / "dataset"
    win.datasets.export_dataset(ExportChoice(out, {"format": "camvid", "split": (1, 0, 0)}))
    qtbot.waitUntil(lambda: not win.jobs.running, timeout=30_000)
    seen: list[tuple] = []

    def fill(dialog: ImportDialog) -> None:
        dialog.format.setCurrentIndex(dialog.format.findData("camvid"))
        dialog.source.setText(str(out))
        dialog.void.setValue(11)

    def kept(dialog: ImportDialog) -> None:
        seen.append((dialog.format.currentData(), dialog.source.text(), dialog.void.value()))

    # the project's images hold labels: refused without the checkbox ticked
    _answer(
        [
            (_dialog_button(ImportDialog), fill),
            (_dialog_button(ImportDialog, QDialogButtonBox.StandardButton.Cancel), kept),
        ]
    )
    win.datasets.import_dataset()
    qtbot.waitUntil(lambda: not win.jobs.running, timeout=30_000)
    qtbot.waitUntil(lambda: bool(seen), timeout=10_000)  # the dialog, again
    assert seen == [("camvid", str(out), 11)]
    assert "tick 'Replace labels of images that already have some'" in warnings[0]
    assert "--replace" not in warnings[0]
    assert win.statusBar().currentMessage() == warnings[0]
    win.close()


def test_a_failed_export_says_what_failed_where_and_what_to_do(
    qtbot, tmp_path: Path, warnings: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _reviewed_project(tmp_path / "src")
    win = open_window(qtbot, src)
    (tmp_path / "export1").mkdir()
    existing = tmp_path / "export1" / "existing.txt"
    existing.write_text("in the way")

    def broken(*_a, **_k):
        raise FileExistsError(17, "File exists", str(existing))
        yield  # a generator, like the real export

    monkeypatch.setattr("segstudio.io.datasets.export_dataset", broken)
    win.datasets.export_dataset(ExportChoice(existing, {"format": "index"}))
    qtbot.waitUntil(lambda: not win.jobs.running, timeout=30_000)
    assert warnings == [
        f"Export failed: there is already a file or folder at {existing}. "
        "Choose another place, and try again."
    ]
    assert "Errno" not in warnings[0] and "FileExistsError" not in warnings[0]
    assert win.statusBar().currentMessage() == warnings[0]
    win.close()
