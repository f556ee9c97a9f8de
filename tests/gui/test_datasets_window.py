"""Export and import from the window: in a worker, whole or not at all."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QMessageBox

from segstudio.core.labelset import preset
from segstudio.gui.dataset_dialogs import ExportChoice, ImportChoice
from segstudio.io.project import ImageStatus, Project
from tests.gui.conftest import make_images, open_window


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
    assert "Imported 3 mask(s)" in shown[-1]
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
