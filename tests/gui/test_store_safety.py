"""The window never loses what a person painted: saves mid-drag, labels of a resized image
kept aside (and said so), a project open in another process refused by name."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QMessageBox

from segstudio.core.labelset import UNLABELED
from segstudio.gui.main_window import MainWindow
from segstudio.io.project import ImageStatus, Project
from tests.gui.conftest import open_window, view_pos

REPO = Path(__file__).resolve().parents[2]


def _stored(folder: Path, name: str) -> np.ndarray | None:
    """What another SegStudio would read from disk now."""
    with Project.open(folder, read_only=True) as other:
        return other.load_labels(name)


def test_autosave_during_a_drag_saves_the_part_drawn(window: MainWindow, folder: Path) -> None:
    window.palette.choose(2)
    window.canvas.set_brush_radius(2)
    vp = window.canvas.viewport()
    left, none = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    QTest.mousePress(vp, left, none, view_pos(window, 10, 20))
    QTest.mouseMove(vp, view_pos(window, 40, 20))
    assert window.doc.stroking
    window.editing.autosave()  # the timer fires while the button is down
    window.editing.saver.wait()
    stored = _stored(folder, "img0.png")
    assert stored is not None and stored[20, 25] == 2, "the drag so far was not saved"
    assert window.doc.stroking  # the drag was not cut short
    QTest.mouseMove(vp, view_pos(window, 40, 60))
    QTest.mouseRelease(vp, left, none, view_pos(window, 40, 60))
    assert not window.doc.stroking and window.doc.labels[50, 40] == 2
    window.doc.editor.undo()  # still one undo step for the whole drag
    assert (window.doc.labels == UNLABELED).all()
    assert window.editing.save_now()
    assert (_stored(folder, "img0.png") == UNLABELED).all()


def test_labels_of_a_resized_image_are_kept_aside_and_the_window_says_so(
    qtbot, folder: Path
) -> None:
    with Project.open(folder) as p:
        p.scan()
        p.save_labels("img0.png", np.ones((90, 120), np.uint8))
        p.set_status("img0.png", ImageStatus.REVIEWED)
    Image.fromarray(np.zeros((100, 150, 3), np.uint8)).save(folder / "img0.png")
    win = open_window(qtbot, folder)
    message = win.statusBar().currentMessage()
    assert "kept in" in message and "aside" in message, message
    (kept,) = (folder / ".segstudio" / "labels" / "aside").iterdir()
    assert kept.name in message
    assert win.doc.labels.shape == (100, 150)
    win.close()


_HOLDER = textwrap.dedent(
    """
    import sys
    from segstudio.io.project import Project
    project = Project.open(sys.argv[1])
    print("ready", flush=True)
    sys.stdin.read()
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="the holder is killed with SIGKILL")
def test_a_project_open_in_another_process_is_refused_by_name(
    qtbot, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(folder)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().startswith("ready")
        shown: list[str] = []
        monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: shown.append(a[2]))
        monkeypatch.setattr(QMessageBox, "critical", lambda *a, **k: shown.append(a[2]))
        win = MainWindow()
        qtbot.addWidget(win)
        win.show()
        assert win.open_folder(folder) is False
        assert len(shown) == 1 and f"pid {holder.pid}" in shown[0]
        assert win.project is None
        holder.kill()  # the other window crashed: the project is free again
        holder.wait()
        assert win.open_folder(folder) is True
        qtbot.waitUntil(lambda: win.doc is not None)
        win.close()
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.communicate()
