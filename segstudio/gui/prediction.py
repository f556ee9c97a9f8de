"""The model in the loop, in the window: the active model and what it predicts.

The active model is the project's stored choice, never a guess: a project
without one takes the bundled model when its classes fit; a chosen model
whose file has gone leaves the project without a model, and the window says
so. The image just shown is predicted automatically, in a worker of its own
beside the jobs (the model service serialises predictions), so nothing the
user starts waits for it; Predict and Predict all are jobs. Model → Models…
lists the project's models with their lineage, and Learn as I paint feeds
the live learner after every edit.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog, QLabel, QMessageBox

from segstudio.core.bundled import bundled_model_path
from segstudio.core.errors import SegStudioError
from segstudio.core.jobs import Progress
from segstudio.gui.editing import EditingController
from segstudio.gui.jobs import JobKind, JobRunner, WorkerSet, error_text
from segstudio.gui.live_learning import LiveLearning, live_base
from segstudio.gui.models_dialog import ModelsDialog
from segstudio.gui.ui import Ui
from segstudio.io.project import ImageStatus, Project
from segstudio.io.project.models import ModelKind, ModelSummary, read_summary
from segstudio.session.document import ImageDocument
from segstudio.session.models import ModelService, predict_all, predict_one

log = logging.getLogger(__name__)

#: The project setting behind Model → Use a new model automatically when it is better.
AUTO_USE_SETTING = "auto_use_better_model"
#: How long closing waits for the automatic prediction (it writes to the project).
AUTO_WAIT_S = 60.0


def default_model(project: Project) -> Path | None:
    """The bundled model when its classes fit the project's, else None.

    Only the bundled model is ever a default: a project model becomes active
    when the user chooses it. The header is read without torch.
    """
    bundled = bundled_model_path()
    if bundled is None:
        return None
    fits = read_summary(bundled, ModelKind.BUNDLED).misfit(project.labelset) is None
    return bundled if fits else None


class PredictionController(QObject):
    """The active model, automatic and requested predictions, the models dialog, live learning."""

    def __init__(self, ui: Ui, jobs: JobRunner, editing: EditingController) -> None:
        super().__init__(ui.window)
        self.ui, self.jobs, self.editing = ui, jobs, editing
        self.service = ModelService()
        #: The automatic prediction of the shown image (at most one runs).
        self.auto = WorkerSet(self)
        self._auto_again = False  # another image was shown meanwhile
        self.auto_failed: Path | None = None  # the model it failed with: no more tries
        self.models_dialog: ModelsDialog | None = None
        #: Learn as I paint: the live learner's worker, fed after every edit
        self.live = LiveLearning(self)
        self.live.predicted.connect(self._predicted)
        self.live.status.connect(lambda text: ui.say(text, 8000))
        self.live_label = QLabel()
        self.live_label.setObjectName("liveLearning")
        self.live_label.setToolTip("Model → Learn as I paint (Ctrl+Alt+L)")
        self.model_label = QLabel("Model: none")
        self.model_label.setObjectName("activeModel")
        ui.status.addPermanentWidget(self.live_label)
        ui.status.addPermanentWidget(self.model_label)
        editing.docShown.connect(self._shown)
        editing.edited.connect(self._edited)
        ui.action("actionAutoUseBetter").toggled.connect(self._set_auto_use)
        ui.action("actionLearnAsIPaint").toggled.connect(self.set_live)
        for name, handler in {
            "actionChooseModel": self.choose_model,
            "actionModels": self.show_models,
            "actionPredictImage": self.predict_image,
            "actionPredictAll": self.predict_all,
        }.items():
            ui.action(name).triggered.connect(lambda _c=False, h=handler: h())

    # -- the project's model -----------------------------------------------------------------

    def open(self, project: Project, learn: object) -> None:
        """Use the model stored with ``project``; Learn as I paint as ``learn`` (the stored
        choice; not a bool: on when no model is active)."""
        self.ui.set_checked("actionAutoUseBetter", project.get_setting(AUTO_USE_SETTING) is True)
        self._restore_model(project)
        on = learn if isinstance(learn, bool) else self.service.path is None
        self.ui.set_checked("actionLearnAsIPaint", on)
        self.set_live(on)

    def _restore_model(self, project: Project) -> None:
        choice = project.model_choice()
        if choice is None:
            path = default_model(project)
            if path is not None:
                try:
                    project.set_active_model(path, bundled=True)
                except SegStudioError as exc:  # used now; chosen again at the next open
                    log.warning("could not store the active model: %s", exc)
            self._use_model(path)
            return
        path = project.active_model()
        if path is not None:
            self._use_model(path)
            return
        where = choice.expected_path(project.models_dir)
        text = (
            f"The project's model, {choice.label}, is missing"
            + (f" ({where})" if where is not None and choice.kind is not ModelKind.BUNDLED else "")
            + ": no model is active. Choose one in Model → Models… (Ctrl+Shift+M)."
        )
        log.warning("%s: %s", project.folder, text)
        self._use_model(None, missing=choice.label)
        self.editing.set_notice(text)

    def close(self) -> None:
        """Before the project closes: let the automatic prediction end, stop live learning."""
        self._auto_again = False
        self.auto.wait(AUTO_WAIT_S)
        self.live.flush()
        self.live.stop()
        if self.models_dialog is not None:
            self.models_dialog.close()

    def _set_auto_use(self, on: bool) -> None:
        project = self.editing.project
        if project is None:
            return
        try:
            project.set_setting(AUTO_USE_SETTING, on)
        except SegStudioError as exc:
            self.ui.say(f"Could not store the setting: {exc}", 8000)

    def choose_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self.ui.window, "Choose a model", "", "SegStudio models (*.safetensors)"
        )
        if path:
            self.set_model(Path(path))

    def set_model(self, path: Path) -> bool:
        """Make ``path`` the active model and store that choice in the project.

        Returns False (after telling the user) when the file is not a usable model.
        """
        try:
            from segstudio.model.files import read_model_info  # header only: fast, no weights

            info = read_model_info(path)
        except SegStudioError as exc:
            QMessageBox.warning(self.ui.window, "Choose model", str(exc))
            return False
        self._use_model(path)
        if self.editing.project is not None:
            try:
                self.editing.project.set_active_model(path)
            except SegStudioError as exc:
                QMessageBox.warning(
                    self.ui.window, "Choose model", f"The choice is not stored: {exc}"
                )
        self.ui.say(
            f"Model: {path.name} ({info.arch.name}, {info.labelset.num_classes} classes)", 8000
        )
        return True

    def _use_model(self, path: Path | None, *, missing: str | None = None) -> None:
        """Predict with ``path`` from now on (None: no model; ``missing``: the chosen
        model that has gone, named in the status bar)."""
        self.service.set_model(path)
        self.auto_failed = None
        if missing is not None:
            self.model_label.setText(f"Model: {missing} is missing")
            self.model_label.setToolTip("Model → Models… (Ctrl+Shift+M) chooses another")
            return
        name = "none" if path is None else path.name
        if path is not None and path == bundled_model_path():
            name += " (bundled)"
        self.model_label.setText(f"Model: {name}")
        self.model_label.setToolTip(str(path) if path else "Model → Models… (Ctrl+Shift+M)")

    def show_models(self) -> None:
        """Model → Models…: the project's models with metrics and lineage; Use picks one."""
        project = self.editing.project
        if project is None:
            return
        if self.models_dialog is not None:
            self.models_dialog.deleteLater()
        dialog = ModelsDialog(self.ui.window, project, self.ui.palette.labelset)
        dialog.useRequested.connect(self._use_listed_model)
        self.models_dialog = dialog
        dialog.open()  # window-modal, without blocking

    def _use_listed_model(self, summary: ModelSummary) -> None:
        """Make a model of the list active, then offer to re-predict the unreviewed images."""
        project = self.editing.project
        if project is None:
            return
        if self.jobs.kind is not None:
            QMessageBox.information(
                self.ui.window,
                "Models",
                f"Wait for “{self.jobs.kind.value}” to finish (or cancel it) first.",
            )
            return
        if not self.set_model(summary.path):
            return
        unreviewed = [r for r in project.images() if r.status is not ImageStatus.REVIEWED]
        if not unreviewed:
            return
        answer = QMessageBox.question(
            self.ui.window,
            "Models",
            f"{summary.name} is the active model now. Re-predict the {len(unreviewed)} "
            "unreviewed image(s) with it? Painted pixels and reviewed images stay as they are.",
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.predict_all()

    # -- predicting --------------------------------------------------------------------------

    def _shown(self, doc: ImageDocument) -> None:
        if self.live.running:
            self.live.shown(doc.name)  # the live learner predicts what it shows
        else:
            self.auto_predict()

    def auto_predict(self) -> None:
        """Predict the image just shown when it has no prediction yet.

        It runs in its own worker, so every action stays available meanwhile;
        an image shown while one is predicted is taken up when that ends. A
        model that fails says so once in the status bar and is not tried again
        until another model is chosen.
        """
        doc, project, model = self.editing.doc, self.editing.project, self.service.path
        if (
            doc is None
            or project is None
            or model is None
            or model == self.auto_failed
            or doc.prediction is not None
            or not self.ui.checked("actionAutoPredict")
            or self.jobs.kind is JobKind.PREDICT_ALL  # it predicts this image anyway
        ):
            return
        if self.auto.busy:
            self._auto_again = True
            return
        try:
            if project.record(doc.name).status is ImageStatus.REVIEWED:
                return
        except SegStudioError:  # the image vanished
            return
        self.auto.start(
            predict_one,
            self.service,
            project,
            doc.name,
            returned=self._predicted,
            errored=lambda exc, m=model: self._auto_error(m, exc),
            finished=self._auto_finished,
        )

    def _auto_error(self, model: Path, exc: BaseException) -> None:
        if model != self.service.path:  # another model was chosen meanwhile: try with it
            self._auto_again = True
            return
        msg = error_text(exc)
        log.warning("automatic prediction with %s failed: %s", model, msg)
        self.auto_failed = model
        self.ui.say(f"Automatic prediction stopped: {msg}", 15000)

    def _auto_finished(self) -> None:
        if self._auto_again:
            self._auto_again = False
            self.auto_predict()

    def predict_image(self) -> None:
        doc, project = self.editing.doc, self.editing.project
        if doc is None or project is None:
            return
        if project.record(doc.name).status is ImageStatus.REVIEWED:
            self.ui.say("This image is reviewed: its labels stay as they are", 6000)
        self.jobs.start(
            JobKind.PREDICT, predict_one, self.service, project, doc.name, on_return=self._predicted
        )

    def predict_all(self) -> None:
        project = self.editing.project
        if project is None:
            return
        names = [r.name for r in project.images() if r.status is not ImageStatus.REVIEWED]
        self.jobs.start(
            JobKind.PREDICT_ALL, predict_all, self.service, project, names, on_report=self._report
        )

    def _predicted(self, result: tuple[str, np.ndarray, np.ndarray]) -> None:
        self.editing.set_prediction(*result)

    def _report(self, p: Progress) -> None:
        if p.name:
            self.editing.prediction_stored(p.name)
        if p.error:
            self.ui.say(f"{p.name}: {p.error}", 8000)

    # -- learn as I paint --------------------------------------------------------------------

    def set_live(self, on: bool) -> None:
        """Start or stop learning as the user paints."""
        self.live.stop()
        self.live_label.setText("")
        project = self.editing.project
        if not on or project is None:
            return
        base = live_base(self.service.path)
        if base is None:
            self.ui.say(
                "Learn as I paint needs a SegNet to read features from (the bundled model): "
                "none is installed",
                10000,
            )
            return
        self.live.start(project, base)
        self.live_label.setText("Learning as you paint")
        if self.editing.doc is not None:
            self.live.shown(self.editing.doc.name)

    def _edited(self, doc: ImageDocument) -> None:
        """An edit (or undo) finished: the live learner takes the labels after a pause."""
        if self.live.running:
            self.live.edited(doc.name, lambda d=doc: d.labels.copy())
