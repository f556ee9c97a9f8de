"""Export and import datasets from the window, as cancellable jobs.

Export writes the labelled images in a training format; the output folder is
swapped in whole, so a cancelled export writes nothing. The export and import
dialogs keep their choices (for the project, and after an error, when they
open again by itself); a folder that holds files is replaced only after the
user says so in the window. Import brings a
dataset's masks in as reviewed labels, all or nothing; meanwhile the canvas,
the image list and the palette wait (imported labels must not race with
painting), and afterwards they show what was imported, counted honestly:
masks for images the project had, and images that are new.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, cast

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QDialog, QMessageBox

from segstudio.core.errors import SegStudioError
from segstudio.core.jobs import relay
from segstudio.gui.dataset_dialogs import ExportChoice, ExportDialog, ImportChoice, ImportDialog
from segstudio.gui.editing import EditingController
from segstudio.gui.jobs import JobKind, JobRunner
from segstudio.gui.ui import Ui
from segstudio.io.project import ImageRecord, ImageStatus, Project

if TYPE_CHECKING:  # read when a dataset is exported or imported, not at start-up
    from segstudio.io.datasets import ExportReport, ImportReport

D = TypeVar("D", bound=QDialog)


def plural(n: int, word: str) -> str:
    """``1 mask``, ``2 masks``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def import_counts(report: ImportReport, before: set[str], records: list[ImageRecord]) -> str:
    """The import in words: masks for images the project had, and new images (with and
    without a mask), e.g. "10 masks imported for 10 existing images, 0 new images"."""
    new = [r for r in records if r.name not in before]
    new_masked = sum(r.status is ImageStatus.REVIEWED for r in new)
    existing = max(report.labels - new_masked, 0)
    text = (
        f"{plural(report.labels, 'mask')} imported as reviewed labels for "
        f"{plural(existing, 'existing image')}, {plural(len(new), 'new image')}"
    )
    if new and new_masked < len(new):
        text += f" ({len(new) - new_masked} of them without a mask)"
    return text + "."


def folder_files(folder: Path) -> int:
    """How many entries ``folder`` holds (0 when it does not exist or cannot be read)."""
    try:
        return sum(1 for _ in folder.iterdir()) if folder.is_dir() else 0
    except OSError:
        return 0


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
        #: The export and import dialogs, which keep their choices for the project.
        self._dialogs: dict[JobKind, QDialog] = {}
        self._dialogs_for: Project | None = None
        self._asked = False  # the running export's or import's choices came from its dialog
        self._before: set[str] = set()  # the project's images when an import started
        jobs.finished.connect(self._job_finished)
        ui.action("actionExportDataset").triggered.connect(lambda _c=False: self.export_dataset())
        ui.action("actionImportDataset").triggered.connect(lambda _c=False: self.import_dataset())

    def _kept(self, kind: JobKind, project: Project, make: Callable[[], D]) -> D:
        """The project's dialog for ``kind``, with the choices made last time (``make``
        makes it the first time, or for another project)."""
        if self._dialogs_for is not project:
            for dialog in self._dialogs.values():
                dialog.deleteLater()
            self._dialogs, self._dialogs_for = {}, project
        if kind not in self._dialogs:
            self._dialogs[kind] = make()
        return cast(D, self._dialogs[kind])

    def export_dialog(self, project: Project) -> ExportDialog:
        """The project's export dialog, with the choices made last time."""
        default = project.folder.parent / f"{project.folder.name}-dataset"
        return self._kept(JobKind.EXPORT, project, lambda: ExportDialog(self.ui.window, default))

    def import_dialog(self, project: Project) -> ImportDialog:
        """The project's import dialog, with the choices made last time."""
        return self._kept(JobKind.IMPORT, project, lambda: ImportDialog(self.ui.window))

    def ask_export(self, project: Project) -> ExportChoice | None:
        """Ask where and how to export, until the choices hold (None: the user cancelled).

        Wrong choices are said and the dialog opens again with them; a folder
        that holds files is replaced only when the user clicks Replace.
        """
        from segstudio.io.datasets import ExportOptions

        dialog = self.export_dialog(project)
        while dialog.exec() == QDialog.DialogCode.Accepted:
            choice = dialog.choice()
            try:
                ExportOptions(**choice.options)
            except SegStudioError as exc:
                QMessageBox.warning(self.ui.window, "Export", str(exc))
                continue
            n = folder_files(choice.out)
            if n and not self.confirm_replace(choice.out, n):
                continue
            return ExportChoice(choice.out, {**choice.options, "overwrite": n > 0})
        return None

    def confirm_replace(self, out: Path, n: int) -> bool:
        """Ask before an export replaces a folder that holds files."""
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Export",
            f"{out} already holds {plural(n, 'file or folder')}.\n\n"
            "Replace its contents with the export? The old contents are removed only "
            "once the export is complete.",
            parent=self.ui.window,
        )
        replace = box.addButton("Replace", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton("Choose another folder", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(replace)
        box.setObjectName("exportReplace")
        box.exec()
        return box.clickedButton() is replace

    def export_dataset(self, choice: ExportChoice | None = None) -> None:
        """Export the labelled images in a job (progress, cancel); DIR is swapped in whole."""
        project = self.editing.project
        if project is None:
            return
        asked = choice is None
        if choice is None:
            choice = self.ask_export(project)
            if choice is None:
                return
        from segstudio.io.datasets import ExportOptions, export_dataset

        self.editing.save()
        self.editing.saver.wait()
        try:
            options = ExportOptions(**choice.options)
        except SegStudioError as exc:
            QMessageBox.warning(self.ui.window, "Export", str(exc))
            return
        cancel = threading.Event()
        if self.jobs.start(
            JobKind.EXPORT,
            relay,
            export_dataset(project, choice.out, options),
            cancel.is_set,
            on_return=self._export_done,
            cancel=cancel,
        ):
            self._asked = asked  # a job that did not start leaves the running one's

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
        asked = choice is None
        if choice is None:
            dialog = self.import_dialog(project)
            if dialog.exec() != QDialog.DialogCode.Accepted:
                return
            choice = dialog.choice()
        from segstudio.io.datasets import import_dataset

        self.ui.canvas.cancel_gesture()
        self.editing.save()
        self.editing.saver.wait()
        self._before = {r.name for r in self.editing.records()}
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
        if started:
            self._asked = asked
        else:
            self.blocked.emit(False)

    def _import_done(self, report: ImportReport | None) -> None:
        project = self.editing.project
        if report is None or project is None:
            self.ui.say("Import cancelled: the project is unchanged", 8000)
            return
        palette = self.ui.palette
        palette.set_labelset(project.labelset, keep_row=palette.current())  # redraws the tables
        records = self.editing.records()  # the import's commit refreshed them
        self.ui.images.set_records(records)
        if self.editing.doc is not None:
            self.editing.reload_labels()
        elif records:
            self.ui.images.select(records[0].name)
        text = import_counts(report, self._before, records)
        if report.warnings:
            text += "\n\n" + "\n".join(report.warnings[:20])
        QMessageBox.information(self.ui.window, "Import", text)

    def _job_finished(self, kind: JobKind) -> None:
        if kind is JobKind.IMPORT:
            self.blocked.emit(False)
        again = {JobKind.EXPORT: self.export_dataset, JobKind.IMPORT: self.import_dataset}
        if kind in again:
            failed, self._asked = self._asked and self.jobs.failed, False
            if failed:  # the error was shown: the dialog again, with the choices made
                QTimer.singleShot(0, lambda: again[kind]())
