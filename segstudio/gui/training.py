"""Fine-tuning from the window: the request, the job, its progress, and what comes of it.

One click fine-tunes the active model (or, for classes no model knows yet,
the bundled model's encoder with a new head) on a snapshot of the labels,
in a job, while the user keeps painting; Fine-tune… asks for the options
first. A run the app quit or crashed in is offered for resuming. The new
model is never active by itself: the user clicks Use, or has asked for a
better model to be used automatically. Images marked for validation are held
out of training to judge the new model.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QDialog, QMessageBox

from segstudio.core.bundled import bundled_model_path
from segstudio.gui.editing import EditingController
from segstudio.gui.jobs import JobKind, JobRunner
from segstudio.gui.prediction import PredictionController
from segstudio.gui.training_panel import FineTuneDialog, TrainingPanel
from segstudio.gui.ui import Ui
from segstudio.io.project import Project
from segstudio.session.training import (
    FineTuneRequest,
    InterruptedRun,
    StartFrom,
    TrainingOutcome,
    Validation,
    discard_run,
    interrupted_run,
    run_training,
)

if TYPE_CHECKING:  # torch: imported by the worker that trains, not here
    from segstudio.training.loop import TrainProgress

#: The project setting that lists the images held out for validation.
VALIDATION_SETTING = "validation_images"


class TrainingController(QObject):
    """Fine-tune jobs, the training panel, and the images marked for validation.

    Signals
    -------
    started()
        A fine-tune started (show its panel).
    validationChanged()
        The open image was marked for validation, or unmarked.
    """

    started = Signal()
    validationChanged = Signal()  # noqa: N815 - Qt naming

    def __init__(
        self,
        ui: Ui,
        panel: TrainingPanel,
        jobs: JobRunner,
        prediction: PredictionController,
        editing: EditingController,
    ) -> None:
        super().__init__(ui.window)
        self.ui, self.panel, self.jobs = ui, panel, jobs
        self.prediction, self.editing = prediction, editing
        #: GUI-side copy of the project's validation images (no project lock to read it)
        self._val_names: list[str] = []
        self._trained: Path | None = None
        #: The step of the running fine-tune's last checkpoint (None: none saved yet).
        self._checkpoint: int | None = None
        self._started = 0.0  # when the running fine-tune started (monotonic)
        panel.cancelRequested.connect(jobs.cancel)
        panel.useModelRequested.connect(self.use_trained_model)
        jobs.finished.connect(self._job_finished)
        for name, handler in {
            "actionFineTune": self.fine_tune,
            "actionFineTuneDialog": self.fine_tune_with_options,
            "actionToggleValidation": self.toggle_validation,
        }.items():
            ui.action(name).triggered.connect(lambda _c=False, h=handler: h())

    def open(self, project: Project) -> None:
        names = project.get_setting(VALIDATION_SETTING)
        self._val_names = list(names) if isinstance(names, list) else []
        self.ui.images.set_marked(set(self._val_names))

    def close(self) -> None:
        self._trained = None
        self._val_names = []
        self.panel.hide_use()

    # -- validation images -------------------------------------------------------------------

    def validation_images(self) -> list[str]:
        return list(self._val_names)

    def is_marked(self, name: str) -> bool:
        return name in self._val_names

    def toggle_validation(self) -> None:
        """Hold the open image out of training, for validating new models (or stop)."""
        project, doc = self.editing.project, self.editing.doc
        if project is None or doc is None:
            return
        names = self.validation_images()
        if doc.name in names:
            names.remove(doc.name)
            text = f"{doc.name} is a training image again"
        else:
            names.append(doc.name)
            text = f"{doc.name} is held out for validation ({len(names)} in all)"
        project.set_setting(VALIDATION_SETTING, names)
        self._val_names = names
        self.ui.images.set_marked(set(names))
        self.ui.say(text, 5000)
        self.validationChanged.emit()

    # -- fine-tuning -------------------------------------------------------------------------

    def default_request(self) -> FineTuneRequest:
        """What one click on Fine-tune does: train the active model (or a new one)."""
        # the active model; for a project whose classes no model has yet, the
        # bundled model's encoder with a new head (the engine does that)
        active = self.prediction.service.path is not None or bundled_model_path() is not None
        return FineTuneRequest(
            start=StartFrom.ACTIVE if active else StartFrom.NEW,
            validation=Validation.MARKED if self._val_names else Validation.AUTO,
        )

    def fine_tune_with_options(self) -> None:
        if self.editing.project is None:
            return
        path = self.prediction.service.path
        if path is not None:
            start: str | None = f"The active model ({path.name})"
        elif bundled_model_path() is not None:  # its classes differ from the project's
            start = "The bundled model's encoder, with a new head for these classes"
        else:
            start = None
        dialog = FineTuneDialog(self.ui.window, start_label=start, marked_val=len(self._val_names))
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.fine_tune(dialog.request())

    def _offer_resume(self, project: Project) -> InterruptedRun | None:
        """If a fine-tune was interrupted, ask whether to resume it (else discard it)."""
        found = interrupted_run(project)
        if found is None:
            return None
        answer = QMessageBox.question(
            self.ui.window,
            "Fine-tune",
            f"A fine-tune was interrupted at {found.where()} (saved {found.saved_at or '?'}). "
            "Resume it from there?",
        )
        if answer != QMessageBox.StandardButton.Yes:
            discard_run(found.folder)
            return None
        return found

    def fine_tune(self, request: FineTuneRequest | None = None) -> None:
        """Train in a job on a snapshot of the labels; the user keeps painting."""
        project = self.editing.project
        if project is None:
            return
        if self.jobs.kind is not None:
            self.ui.say(f"{self.jobs.kind.value} is still running", 5000)
            return
        resume: Path | None = None
        # no model yet: the bundled encoder
        model = self.prediction.service.path or bundled_model_path()
        # Learn as I paint on: the verdict is against the live learner the user labels with
        live = self.prediction.live_base()
        resumed = self._offer_resume(project)
        if resumed is not None:
            request, model, resume = resumed.request, resumed.active_model, resumed.folder
            live = resumed.live_base
        request = request or self.default_request()
        self.editing.save()
        self.editing.saver.wait()  # the snapshot includes the latest strokes
        cancel = threading.Event()
        names = project.labelset_or_default().names
        what = (
            f"fine-tuning {model.name}"
            if request.start is StartFrom.ACTIVE and model
            else f"training a new {request.arch.name} model"
        )
        if live is not None:
            what += "; judged against Learn as I paint"
        if resume is not None:
            what = f"resuming: {what}"
        started = self.jobs.start(
            JobKind.FINE_TUNE,
            run_training,
            project,
            model,
            request,
            cancel,
            resume,
            self.jobs.keep,
            live,
            on_report=self._progress,
            on_return=self._done,
            cancel=cancel,
        )
        if started:
            self._started = time.monotonic()
            # a resumed run starts from a checkpoint on disk
            self._checkpoint = (resumed.step or 0) if resumed is not None else None
            self.panel.start(names, what)
            self.started.emit()

    def _progress(self, p: TrainProgress) -> None:
        self.panel.progress(p)
        if p.kind == "checkpoint":
            self._checkpoint = p.step
        if p.kind != "step":
            return
        if p.total_steps:
            self.jobs.show_progress(p.step, p.total_steps, f"Fine-tune: step {p.step}/%m")
        elif p.eta_s is not None:  # a time budget: the bar shows the time, the text the step
            spent = time.monotonic() - self._started
            left = f"{int(p.eta_s) // 60}:{int(p.eta_s) % 60:02d}"
            self.jobs.show_progress(
                int(spent), int(spent + p.eta_s), f"Fine-tune: step {p.step}, {left} left"
            )

    def _done(self, outcome: TrainingOutcome | None) -> None:
        if outcome is None:
            self.panel.finish("Cancelled: no model was stored.", can_use=False)
            return
        r = outcome.result
        self.panel.show_final(r.after)  # the kept weights' numbers, not the last epoch's
        self.prediction.models_panel.refresh()  # list the new model
        text = f"The new model: {r.verdict}."  # better, NOT better, or why no verdict
        if r.stopped_early:
            text += f" Stopped early: {r.stopped_early}."
        text += f" Stored as {outcome.path.name}."
        self._trained = outcome.path
        # a new model is never active by itself: the user clicks Use, or has asked
        # for a better one to be used (Model → Use a new model automatically …)
        auto = self.ui.checked("actionAutoUseBetter") and r.improved is True
        if auto and self.prediction.set_model(outcome.path):
            text += " It is the active model now; the unreviewed images are re-predicted."
            self.jobs.then(self.prediction.predict_all)  # once the fine-tune has ended
            self.panel.finish(text, can_use=False, verdict=r.verdict)
        else:
            text += " The active model stays until you click Use."
            self.panel.finish(text, can_use=True, verdict=r.verdict)
        self.ui.say(f"Fine-tune finished: {text}")  # until replaced: the run's verdict

    def _job_finished(self, kind: JobKind) -> None:
        if kind is JobKind.FINE_TUNE:
            self.panel.set_running(False)

    def use_trained_model(self) -> None:
        """Make the newest trained model active and re-predict what nobody reviewed."""
        if self._trained is None:
            return
        if not self.prediction.set_model(self._trained):
            return
        self.panel.used(
            f"{self._trained.name} is the active model now; the unreviewed images are "
            "re-predicted with it."
        )
        self.prediction.predict_all()

    def confirm_quit(self) -> bool:
        """Quitting during a fine-tune: ask. With a checkpoint saved, yes keeps it, to
        resume next time; without one, the run is lost, and the question says so."""
        if self.jobs.kind is not JobKind.FINE_TUNE:
            return True
        step = self._checkpoint
        if step is not None:
            text = (
                "A fine-tune is running. Quit now? It can resume from its last checkpoint "
                f"(step {step}) when you fine-tune next."
            )
        else:
            text = (
                "A fine-tune is running and has saved no checkpoint yet. Quit now? "
                "This run is lost; the next fine-tune starts again."
            )
        answer = QMessageBox.question(self.ui.window, "Quit", text)
        if answer != QMessageBox.StandardButton.Yes:
            return False
        if step is not None:
            self.jobs.keep.set()
        return True
