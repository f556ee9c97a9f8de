"""Export and import datasets from the window, as cancellable jobs.

Export writes the labelled images in a training format; the output folder is
swapped in whole, so a cancelled export writes nothing. Import brings a
dataset's masks in as reviewed labels, all or nothing; meanwhile the canvas,
the image list and the palette wait (imported labels must not race with
painting), and afterwards they show what was imported.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QDialog, QMessageBox

from segstudio.core.errors import SegStudioError
from segstudio.core.jobs import relay
from segstudio.gui.dataset_dialogs import ExportChoice, ExportDialog, ImportChoice, ImportDialog
from segstudio.gui.editing import EditingController
from segstudio.gui.jobs import JobKind, JobRunner
from segstudio.gui.ui import Ui

if TYPE_CHECKING:  # read when a dataset is exported or imported, not at start-up
    from segstudio.io.datasets import ExportReport, ImportReport


class DatasetsController(QObject):
    """File → Export dataset… and Import dataset….

    Signals
    -------
    blocked(bool)
        True while an import runs: editing and switching images must wait.
    """

    blocked = Signal(bool)

    def __init__(self, ui: Ui, jobs: JobRunner, editing: EditingController) -> None:
        super().__init__(ui.window)
        self.ui, self.jobs, self.editing = ui, jobs, editing
        jobs.finished.connect(self._job_finished)
        ui.action("actionExportDataset").triggered.connect(lambda _c=False: self.export_dataset())
        ui.action("actionImportDataset").triggered.connect(lambda _c=False: self.import_dataset())

    def export_dataset(self, choice: ExportChoice | None = None) -> None:
        """Export the labelled images in a job (progress, cancel); DIR is swapped in whole."""
        project = self.editing.project
        if project is None:
            return
        if choice is None:
            dialog = ExportDialog(
                self.ui.window, project.folder.parent / f"{project.folder.name}-dataset"
            )
            if dialog.exec() != QDialog.DialogCode.Accepted:
                return
            choice = dialog.choice()
        from segstudio.io.datasets import ExportOptions, export_dataset

        self.editing.save()
        self.editing.saver.wait()
        try:
            options = ExportOptions(**choice.options)
        except SegStudioError as exc:
            QMessageBox.warning(self.ui.window, "Export", str(exc))
            return
        cancel = threading.Event()
        self.jobs.start(
            JobKind.EXPORT,
            relay,
            export_dataset(project, choice.out, options),
            cancel.is_set,
            on_return=self._export_done,
            cancel=cancel,
        )

    def _export_done(self, report: ExportReport | None) -> None:
        if report is None:
            self.ui.say("Export cancelled: nothing was written", 8000)
            return
        splits = ", ".join(f"{k} {v}" for k, v in report.splits.items())
        text = f"Exported {report.images} image(s) as {report.format} to {report.out} ({splits})."
        if report.skipped:
            shown = "\n".join(report.skipped[:20])
            more = f"\n… and {len(report.skipped) - 20} more" if len(report.skipped) > 20 else ""
            text += f"\n\nNot exported:\n{shown}{more}"
        QMessageBox.information(self.ui.window, "Export", text)

    def import_dataset(self, choice: ImportChoice | None = None) -> None:
        """Import a dataset's masks as reviewed labels, whole or not at all, in a job."""
        project = self.editing.project
        if project is None:
            return
        if choice is None:
            dialog = ImportDialog(self.ui.window)
            if dialog.exec() != QDialog.DialogCode.Accepted:
                return
            choice = dialog.choice()
        from segstudio.io.datasets import import_dataset

        self.ui.canvas.cancel_gesture()
        self.editing.save()
        self.editing.saver.wait()
        cancel = threading.Event()
        self.blocked.emit(True)  # imported labels must not race with painting
        gen = import_dataset(
            project,
            choice.source,
            choice.format,
            palette=choice.palette,
            void=choice.void,
            replace=choice.replace,
        )
        started = self.jobs.start(
            JobKind.IMPORT, relay, gen, cancel.is_set, on_return=self._import_done, cancel=cancel
        )
        if not started:
            self.blocked.emit(False)

    def _import_done(self, report: ImportReport | None) -> None:
        project = self.editing.project
        if report is None or project is None:
            self.ui.say("Import cancelled: the project is unchanged", 8000)
            return
        palette = self.ui.palette
        palette.set_labelset(project.labelset, keep_row=palette.current())  # redraws the tables
        records = project.images()
        self.ui.images.set_records(records)
        if self.editing.doc is not None:
            self.editing.reload_labels()
        elif records:
            self.ui.images.select(records[0].name)
        text = f"Imported {report.labels} mask(s) for {report.images} image(s) as reviewed labels."
        if report.warnings:
            text += "\n\n" + "\n".join(report.warnings[:20])
        QMessageBox.information(self.ui.window, "Import", text)

    def _job_finished(self, kind: JobKind) -> None:
        if kind is JobKind.IMPORT:
            self.blocked.emit(False)
