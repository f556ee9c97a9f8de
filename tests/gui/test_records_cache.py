"""The window reads image records from memory (session.ProjectCache), never from the store
on its own thread, and the image list follows writes made on any thread."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QPushButton

from segstudio.core.labelset import preset
from segstudio.io.project import ImageStatus, Project
from segstudio.model.arch import ArchSpec
from segstudio.model.files import new_model, save_model
from tests.gui.conftest import drag, open_window, show

READS = ("record", "images", "least_confident")


@pytest.fixture
def gui_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every store read of a record made on the GUI thread, by method name (the cache's
    own read-back of a write, in the writing thread, is part of that write)."""
    seen: list[str] = []
    for name in READS:
        original = getattr(Project, name)

        def spy(self, *args, _original=original, _name=name, **kwargs):
            caller = sys._getframe(1).f_code
            from_cache = caller.co_filename.endswith("cache.py")
            if threading.current_thread() is threading.main_thread() and not from_cache:
                seen.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(Project, name, spy)
    return seen


def test_painting_reviewing_and_paging_never_read_the_store_on_the_gui_thread(
    qtbot, folder: Path, gui_reads: list[str]
) -> None:
    win = open_window(qtbot, folder)
    gui_reads.clear()  # opening reads the folder once (scan, first records): that is fine
    win.prediction.automatic.stop()
    drag(win, [(10, 10), (60, 20)])
    assert win.editing.save_now()
    QTest.keyClick(win, Qt.Key.Key_R)  # unlabelled pixels: asks first
    qtbot.waitUntil(lambda: win.editing.review.box is not None)
    win.editing.review.box.findChild(QPushButton, "reviewAnyway").click()
    # the list shows the status the store now holds
    qtbot.waitUntil(lambda: win.images.record_of("img0.png").status is ImageStatus.REVIEWED)
    QTest.keySequence(win, QKeySequence("PgDown"))
    qtbot.waitUntil(lambda: win.doc.name == "img1.png")
    win.editing.go_least_confident()  # nothing predicted: says so
    QTest.keyClick(win, Qt.Key.Key_R)
    qtbot.waitUntil(lambda: win.editing.review.box is not None)
    win.editing.review.box.findChild(QPushButton, "reviewAnyway").click()
    qtbot.waitUntil(lambda: win.images.record_of("img1.png").status is ImageStatus.REVIEWED)
    assert gui_reads == []
    win.close()


@pytest.fixture
def tiny_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A small model for the project's classes, as the project's default model."""
    arch = ArchSpec("segnet_basic", {"width": 0.125, "depth": 2})
    path = save_model(tmp_path / "tiny.safetensors", new_model(arch, preset("camvid11"), seed=0))
    monkeypatch.setenv("SEGSTUDIO_BUNDLED_MODEL", str(path))
    return path


def test_the_automatic_prediction_reads_neither_the_store_nor_the_image_file_again(
    qtbot, folder: Path, tiny_model: Path, gui_reads: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """It asks the cache whether the shown image is reviewed, and predicts the pixels the
    window has loaded already (a huge file took seconds to decode once)."""
    import segstudio.session.models as models

    files: list[str] = []
    real_read = models.read_image

    def read(path: Path):
        files.append(Path(path).name)
        return real_read(path)

    monkeypatch.setattr(models, "read_image", read)
    win = open_window(qtbot, folder)
    assert win.models.path == tiny_model
    qtbot.waitUntil(lambda: win.doc.prediction is not None, timeout=60_000)
    gui_reads.clear()
    show(qtbot, win, "img1.png")
    qtbot.waitUntil(lambda: win.doc.prediction is not None, timeout=60_000)
    assert win.project.record("img1.png").has_prediction
    assert gui_reads == []
    assert files == []
    win.close()


def test_a_write_on_another_thread_reaches_the_image_list(qtbot, folder: Path) -> None:
    win = open_window(qtbot, folder)
    project = win.project
    assert project is not None and win.images.record_of("img2.png").status is not (
        ImageStatus.REVIEWED
    )
    writer = threading.Thread(target=project.set_status, args=("img2.png", ImageStatus.REVIEWED))
    writer.start()
    writer.join()
    qtbot.waitUntil(lambda: win.images.record_of("img2.png").status is ImageStatus.REVIEWED)
    (folder / "img3.png").write_bytes((folder / "img0.png").read_bytes())
    writer = threading.Thread(target=project.scan)  # a new image: the whole list again
    writer.start()
    writer.join()
    qtbot.waitUntil(lambda: win.images.record_of("img3.png") is not None)
    assert win.images.record_of("img2.png").status is ImageStatus.REVIEWED
    win.close()


def test_closing_stops_following_the_store(qtbot, folder: Path) -> None:
    win = open_window(qtbot, folder)
    project, cache = win.project, win.editing.cache
    assert project is not None and cache is not None
    win.close_folder()
    assert win.editing.cache is None
    again = Project.open(folder)  # a later write to the same folder reaches no old cache
    try:
        again.set_status("img0.png", ImageStatus.REVIEWED)
        assert cache.status("img0.png") is not ImageStatus.REVIEWED
    finally:
        again.close()
    win.close()
