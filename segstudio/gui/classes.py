"""Classes: the palette's edits (stored at once, or with every mask migrated), the keys
and quick picker that choose a class, and the open image's pixels per class.

Renaming or recolouring a class changes no pixel. Deleting, merging or
reordering classes moves class ids, so every stored mask is rewritten: that
runs in a worker while the canvas, the image list and the palette wait (the
window stays live), and the open image's labels and undo history are
remapped the same way. A class added at the end becomes the chosen one.

Keys 1-9 and 0 choose the first ten classes; Ctrl+K (or `) opens a picker
that finds any class by name.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, QPoint, Signal
from PySide6.QtGui import QCursor
from PySide6.QtWidgets import QMessageBox

from segstudio.core.labelset import UNLABELED, LabelSet
from segstudio.gui.class_counts import ClassCounter
from segstudio.gui.class_dialogs import ClassPicker
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
        self.counter = ClassCounter(self)
        self.picker: ClassPicker | None = None
        ui.palette.labelsetEdited.connect(self.edit_labelset)
        self.counter.countsChanged.connect(ui.palette.set_counts)
        editing.docShown.connect(lambda doc: self.counter.attach(doc.editor))
        ui.action("actionClass10").triggered.connect(lambda _c=False: ui.palette.choose(9))
        ui.action("actionClassPicker").triggered.connect(lambda _c=False: self.pick_class())

    def pick_class(self) -> ClassPicker | None:
        """Open the quick class picker under the mouse (over the canvas) or at the canvas's
        top left; returns it (None without classes)."""
        palette, canvas = self.ui.palette, self.ui.canvas
        ls = palette.labelset
        if ls is None or not ls.num_classes or not palette.isEnabled():
            return None
        if self.picker is not None:
            self.picker.close()
            self.picker.deleteLater()
        picker = ClassPicker(
            ls.names, [c.color for c in ls.classes], palette.current(), self.ui.window
        )
        picker.chosen.connect(palette.choose)
        at = canvas.mapFromGlobal(QCursor.pos())
        if not canvas.rect().contains(at):
            at = QPoint(24, 24)
        picker.popup(canvas.mapToGlobal(at))
        self.picker = picker
        return picker

    def edit_labelset(self, new: LabelSet, lut: np.ndarray | None, what: str) -> None:
        """Apply a class edit from the palette; migrate every stored mask when ids move."""
        project, palette = self.editing.project, self.ui.palette
        if project is None:
            return
        row = palette.current()
        old = palette.labelset
        if (
            lut is None
            and old is not None
            and new.num_classes > old.num_classes
            and new.classes[: old.num_classes] == old.classes
        ):
            row = old.num_classes  # a class added at the end: choose it (and show it)
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
        self.counter.attach(None)
        if self.picker is not None:
            self.picker.close()
