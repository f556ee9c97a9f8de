"""A closed window takes all its windows with it: nothing it made stays behind as a
parentless top-level widget that only Python's garbage collector would free (such a
widget, freed in the middle of ``QApplication.topLevelWidgets()``, crashed a test run)."""

from __future__ import annotations

import gc

from PySide6.QtCore import QEvent
from PySide6.QtWidgets import QApplication

from segstudio.gui.main_window import MainWindow


def _top_level_count() -> int:
    gc.disable()  # nothing freed while the list is turned into Python objects
    try:
        return len(QApplication.topLevelWidgets())
    finally:
        gc.enable()


def _open(qtbot, folder) -> MainWindow:
    """A shown window with ``folder`` open, not handed to qtbot: the test deletes it."""
    win = MainWindow()
    win.resize(1000, 700)
    win.show()
    qtbot.waitExposed(win)
    assert win.open_folder(folder)
    qtbot.waitUntil(lambda: win.doc is not None)
    return win


def test_a_deleted_window_leaves_no_top_level_widgets(qtbot, folder) -> None:
    # earlier tests' windows, closed but not yet deleted, go first: they are not counted
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)
    gc.collect()
    before = _top_level_count()
    win = _open(qtbot, folder)
    assert win.training_panel.loss_plot is not None  # the live plots (pyqtgraph) are built
    assert _top_level_count() > before  # the window, its menus
    win.close()
    win.deleteLater()
    del win
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete.value)
    gc.disable()  # only what C++ deleted with the window counts, not what a collection frees
    try:
        left = [w for w in QApplication.topLevelWidgets() if not isinstance(w, MainWindow)]
        names = [f"{type(w).__name__} {w.objectName()!r}" for w in left]
        count = len(left)
        del left
    finally:
        gc.enable()
    assert count <= before, names
