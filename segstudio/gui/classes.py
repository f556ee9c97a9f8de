"""Class edits from the palette: stored at once, or with every mask migrated.

Renaming or recolouring a class changes no pixel. Deleting, merging or
reordering classes moves class ids, so every stored mask is rewritten: that
runs in a worker while the canvas, the image list and the palette wait (the
window stays live), and the open image's labels and undo history are
remapped the same way.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QMessageBox

from segstudio.core.labelset import UNLABELED, LabelSet
from segstudio.gui.editing import EditingController
from segstudio.gui.jobs import JobRunner, WorkerSet
from segstudio.gui.ui import Ui

#: How long closing the project waits for a migration to finish.
MIGRATION_WAIT_S = 120.0


class ClassesController(QObject):
    """Applies the palette's class edits to the project.

    Signals
    -------
    blocked(bool)
        True while masks migrate: editing and switching images must wait.
    """

    blocked = Signal(bool)

    def __init__(self, ui: Ui, jobs: JobRunner, editing: EditingController) -> None:
        super().__init__(ui.window)
        self.ui, self.jobs, self.editing = ui, jobs, editing
        self.migration = WorkerSet(self)
        ui.palette.labelsetEdited.connect(self.edit_labelset)

    def edit_labelset(self, new: LabelSet, lut: np.ndarray | None, what: str) -> None:
        """Apply a class edit from the palette; migrate every stored mask when ids move."""
        project, palette = self.editing.project, self.ui.palette
        if project is None:
            return
        row = palette.current()
        if lut is None:
            project.set_labelset(new)
            self.ui.say(what, 5000)
            palette.set_labelset(new, keep_row=row, hidden=palette.hidden())
            return
        if self.jobs.kind is not None:
            QMessageBox.information(
                self.ui.window,
                "Classes",
                f"Wait for “{self.jobs.kind.value}” to finish (or cancel it) first.",
            )
            return
        self.ui.canvas.cancel_gesture()
        self.editing.save()
        self.editing.saver.wait()
        self.editing.stop_loading()  # a load under way would read the old numbering
        self.blocked.emit(True)
        self.ui.say(f"{what}: migrating masks…")
        old_version = project.labelset_version
        hidden = frozenset(int(lut[i]) for i in palette.hidden()) - {UNLABELED}
        new_row = int(lut[row]) if int(lut[row]) != UNLABELED else max(0, row - 1)

        def done(n: int) -> None:
            doc = self.editing.doc
            if (
                doc is not None
                and self.editing.project is project
                and doc.labelset_version == old_version
            ):
                doc.editor.remap(lut)  # the saved masks moved the same way; undo still works
                doc.labelset_version = project.labelset_version
                doc.reload_prediction()
            self.ui.say(f"{what}: {n} mask file(s) migrated", 8000)
            palette.set_labelset(new, keep_row=new_row, hidden=hidden)  # redraws the tables

        def failed(exc: BaseException) -> None:
            QMessageBox.critical(self.ui.window, "Classes", f"{what} failed: {exc}")

        self.migration.start(
            project.migrate_classes,
            lut,
            new,
            returned=done,
            errored=failed,
            finished=lambda: self.blocked.emit(False),
        )

    def close(self) -> None:
        """Before the project closes: let a migration under way finish its masks."""
        self.migration.wait(MIGRATION_WAIT_S)
