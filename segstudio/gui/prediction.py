"""The model in the loop, in the window: the active model and what it predicts.

The active model is the project's stored choice, never a guess: a project
without one takes the bundled model when its classes fit; a chosen model
whose file has gone leaves the project without a model, and the window says
so. The image just shown is predicted automatically, in a worker of its own
beside the jobs, so nothing the user starts waits for it; Predict and
Predict all are jobs. A big image is predicted in tiles: the status bar
shows how many are done, Stop (or Cancel) ends it within a moment, and
leaving the image stops its automatic prediction, so the image shown next
never waits behind it. The Models panel (a dock; Model → Models…) lists the
project's models with their metrics and lineage and switches the active one;
a class change that makes the active model unfit is said at once. Learn as I
paint feeds the live learner after every edit.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QFileDialog, QLabel, QMessageBox

from segstudio.core.bundled import bundled_model_path
from segstudio.core.errors import SegStudioError
from segstudio.core.jobs import Progress
from segstudio.gui.auto_prediction import (
    AUTO_WAIT_S,
    AutoPrediction,
    TileRelay,
    short_name,
    unfit_text,
)
from segstudio.gui.editing import EditingController
from segstudio.gui.jobs import JobKind, JobRunner, WorkerSet
from segstudio.gui.live_learning import LiveLearning, live_base
from segstudio.gui.models_panel import ModelsPanel, display_name
from segstudio.gui.ui import Ui
from segstudio.io.project import ImageStatus, Project
from segstudio.io.project.models import ModelKind, ModelSummary, read_summary
from segstudio.session.document import ImageDocument
from segstudio.session.models import ModelService, predict_all, predict_one

log = logging.getLogger(__name__)

#: The project setting behind Model → Use a new model automatically when it is better.
AUTO_USE_SETTING = "auto_use_better_model"


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
    """The active model, automatic and requested predictions, the Models panel, live learning."""

    def __init__(self, ui: Ui, jobs: JobRunner, editing: EditingController) -> None:
        super().__init__(ui.window)
        self.ui, self.jobs, self.editing = ui, jobs, editing
        self.service = ModelService()
        #: The automatic prediction of the shown image (at most one runs).
        self.automatic = AutoPrediction(ui, jobs, editing, self.service)
        self.automatic.predicted.connect(self._predicted)
        self.auto: WorkerSet = self.automatic.workers
        #: What the active model's header says (read torch-free), and why it does not fit.
        self.active: ModelSummary | None = None
        self._missing: str | None = None  # the chosen model, when its file has gone
        self.unfit: str | None = None
        self._fit_for: object = None  # the class list the fit was last checked against
        self._all_done = (0, 0)  # Predict all: images done, of
        self._tiles = TileRelay(self)
        self._tiles.tile.connect(self._job_tile)
        #: The Models panel: the window docks it (Model → Models… shows it)
        self.models_panel = ModelsPanel()
        self.models_panel.useRequested.connect(self._use_listed_model)
        #: Learn as I paint: the live learner's worker, fed after every edit
        self.live = LiveLearning(self)
        self.live.predicted.connect(self._predicted)
        self.live.status.connect(lambda text: ui.say(text, 8000))
        self.live.saved.connect(lambda _path: self.models_panel.refresh())  # list it
        self.live_label = QLabel()
        self.live_label.setObjectName("liveLearning")
        self.live_label.setToolTip("Model → Learn as I paint (Ctrl+Alt+L)")
        self.model_label = QLabel("Model: none")
        self.model_label.setObjectName("activeModel")
        ui.status.addPermanentWidget(self.live_label)
        ui.status.addPermanentWidget(self.model_label)
        editing.docShown.connect(self._shown)
        editing.edited.connect(self._edited)
        editing.prediction_request = self.request_prediction  # [part c] Accept prediction
        # the class list changed (set_labelset ends with hiddenChanged; an edit is applied
        # after labelsetEdited): check at once whether the active model still fits
        ui.palette.hiddenChanged.connect(lambda _h: self.check_fit())
        ui.palette.labelsetEdited.connect(lambda *_a: QTimer.singleShot(0, self.check_fit))
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
        self.automatic.reset()
        self._restore_model(project)
        self._fit_for = None
        self.check_fit()
        self.models_panel.set_project(project, self.ui.palette.labelset)
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
        self.models_panel.set_active(where)  # listed, greyed: its file has gone
        self.editing.set_notice(text)

    def close(self) -> None:
        """Before the project closes: stop the automatic prediction and live learning."""
        self.automatic.close()
        self.live.flush()
        self.live.stop()
        self.models_panel.wait(AUTO_WAIT_S)
        self.models_panel.set_project(None, None)

    def _set_auto_use(self, on: bool) -> None:
        project = self.editing.project
        if project is None:
            return
        try:
            project.set_setting(AUTO_USE_SETTING, on)
        except SegStudioError as exc:
            self.ui.say(f"Could not store the setting: {exc}", 8000)

    def choose_model(self) -> None:
        """Model → Choose model file…: any model file; one whose classes do not fit is refused."""
        project = self.editing.project
        start = str(project.models_dir) if project is not None else str(Path.home())
        path, _ = QFileDialog.getOpenFileName(
            self.ui.window, "Choose a model", start, "SegStudio models (*.safetensors)"
        )
        if not path:
            return
        misfit = read_summary(path).misfit(self.ui.palette.labelset)
        if misfit is not None:
            QMessageBox.warning(
                self.ui.window, "Choose model", f"{Path(path).name} cannot be used here: {misfit}."
            )
            return
        self.set_model(Path(path))

    def set_model(self, path: Path) -> bool:
        """Make ``path`` the active model and store that choice in the project.

        Returns False (after telling the user) when the file is not a usable model.
        The header is read torch-free; the weights load in a worker when needed.
        """
        summary = read_summary(path)
        if summary.error is not None:
            QMessageBox.warning(self.ui.window, "Choose model", f"{path}: {summary.error}")
            return False
        self._use_model(path, summary)
        if self.editing.project is not None:
            try:
                self.editing.project.set_active_model(path)
            except SegStudioError as exc:
                QMessageBox.warning(
                    self.ui.window, "Choose model", f"The choice is not stored: {exc}"
                )
        classes = summary.labelset.num_classes if summary.labelset is not None else "?"
        self.ui.say(f"Model: {path.name} ({summary.arch}, {classes} classes)", 8000)
        return True

    def _use_model(
        self, path: Path | None, summary: ModelSummary | None = None, *, missing: str | None = None
    ) -> None:
        """Predict with ``path`` from now on (None: no model; ``missing``: the chosen
        model that has gone, named in the status bar)."""
        self.service.set_model(path)
        self.automatic.reset()
        if path is not None and summary is None:
            summary = read_summary(path)
        self.active, self._missing = summary, missing
        self.models_panel.set_active(path)
        self._show_fit()
        if self.live.running and live_base(path) != self.live.base:
            self.editing.save()  # the new learner reads the labels from the project
            self.set_live(True)  # Learn as I paint reads the active model: now the new one

    def check_fit(self) -> None:
        """The project's classes may have changed: does the active model still fit?

        Says so at once (status bar, the model's name in it, the Models panel),
        not when a prediction fails.
        """
        labelset = self.ui.palette.labelset
        if labelset is self._fit_for:
            return
        self._fit_for = labelset
        self.models_panel.set_labelset(labelset)
        was = self.unfit
        self._show_fit()
        if self.unfit != was:
            self._say_unfit(fits_again=was is not None)

    def _show_fit(self) -> None:
        """The model's name in the status bar, marked when its classes do not fit."""
        summary, labelset = self.active, self.ui.palette.labelset
        self.unfit = None if summary is None else summary.misfit(labelset)
        self.automatic.unfit = self.unfit
        if summary is None:
            missing = self._missing
            self.model_label.setText(
                "Model: none" if missing is None else f"Model: {missing} is missing"
            )
            self.model_label.setToolTip("Model → Models… (Ctrl+Shift+M) chooses one")
            self.model_label.setStyleSheet("")
            return
        name = display_name(summary)
        if self.unfit is None:
            self.model_label.setText(f"Model: {name}")
            self.model_label.setToolTip(str(summary.path))
            self.model_label.setStyleSheet("")
            return
        self.model_label.setText(f"Model: {name} — does not fit the classes")
        self.model_label.setToolTip(f"{summary.path}\n{self.unfit}")
        self.model_label.setStyleSheet("color: #c0392b")

    def _say_unfit(self, *, fits_again: bool = False) -> None:
        if self.unfit is None:
            if fits_again and self.active is not None:
                self.automatic.failed = None
                self.ui.say(f"The active model fits the classes again: {self.active.name}", 8000)
            return
        assert self.active is not None
        self.automatic.failed = self.service.path  # predicting with it can only fail
        self.ui.say(unfit_text(self.active.name, self.unfit), 30000)

    def show_models(self) -> None:
        """Model → Models…: show the Models panel (read again) and bring it to the front."""
        self.models_panel.reveal()

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
        unreviewed = [r for r in self.editing.records() if r.status is not ImageStatus.REVIEWED]
        if not unreviewed:
            return
        answer = QMessageBox.question(
            self.ui.window,
            "Models",
            f"{display_name(summary)} is the active model now. Re-predict the "
            f"{len(unreviewed)} unreviewed image(s) with it? Painted pixels and reviewed "
            "images stay as they are.",
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.predict_all()

    # -- predicting --------------------------------------------------------------------------

    def request_prediction(self, doc: ImageDocument) -> str | None:
        """[part c] Accept prediction pressed before the prediction came: make sure one of
        ``doc`` is on its way (None), or say why none will come."""
        if self.service.path is None:
            return "no model is active (Model → Models…)"
        if self.unfit is not None or self.service.path == self.automatic.failed:
            return self.unfit or "the model failed on this project (Model → Models…)"
        kind = self.jobs.kind
        if self.live.running or self.automatic.name == doc.name or kind is JobKind.PREDICT_ALL:
            return None  # on its way
        if kind is None:
            self.predict_image()  # a job, with progress and Cancel
            return None
        self.automatic.stopped.discard(doc.name)
        self.automatic.start()
        if self.automatic.name == doc.name:
            return None
        return f"“{kind.value}” is running: press again when it has ended"

    @property
    def auto_failed(self) -> Path | None:
        """The model the automatic prediction failed with (it is not tried again)."""
        return self.automatic.failed

    def auto_predict(self) -> None:
        """Predict the shown image when it has no prediction yet (see :class:`AutoPrediction`)."""
        self.automatic.start()

    def _shown(self, doc: ImageDocument) -> None:
        self.automatic.leave(doc.name)  # the user left that image: this one goes first
        if self.live.running:
            self.live.shown(doc.name)  # the live learner predicts what it shows
        else:
            self.automatic.start()

    def _job_tile(self, _who: str, name: str, done: int, total: int) -> None:
        """A tile of a big image is done in a job: its progress bar says how many."""
        if total <= 1:
            return
        if self.jobs.kind is JobKind.PREDICT:
            self.jobs.show_progress(done, total, f"Predict {short_name(name)}: tile {done}/{total}")
        elif self.jobs.kind is JobKind.PREDICT_ALL:
            i, n = self._all_done
            self.jobs.show_progress(i, n, f"Predict all {i}/{n} · tile {done}/{total}")

    def predict_image(self) -> None:
        """Model → Predict this image: a job, with its tiles' progress and Cancel."""
        doc, project = self.editing.doc, self.editing.project
        if doc is None or project is None:
            return
        if self.editing.status(doc.name) is ImageStatus.REVIEWED:
            self.ui.say("This image is reviewed: its labels stay as they are", 6000)
        if self.jobs.kind is None:
            self.automatic.cancel_for(doc.name)  # the job predicts it now
        self.automatic.stopped.discard(doc.name)
        cancel = threading.Event()
        self.jobs.start(
            JobKind.PREDICT,
            predict_one,
            self.service,
            project,
            doc.name,
            self._tiles.reporter("job", doc.name),
            cancel.is_set,
            on_return=self._predicted,
            cancel=cancel,
        )

    def predict_all(self) -> None:
        """Predict every unreviewed image in a job; Cancel stops it within a moment."""
        project = self.editing.project
        if project is None:
            return
        names = [r.name for r in self.editing.records() if r.status is not ImageStatus.REVIEWED]
        cancel = threading.Event()
        self._all_done = (0, len(names))
        self.jobs.start(
            JobKind.PREDICT_ALL,
            predict_all,
            self.service,
            project,
            names,
            self._tiles.reporter("job", ""),
            cancel.is_set,
            on_report=self._report,
            cancel=cancel,
        )

    def _predicted(self, result: tuple[str, np.ndarray, np.ndarray] | None) -> None:
        if result is not None:  # None: cancelled
            self.editing.set_prediction(*result)

    def _report(self, p: Progress) -> None:
        self._all_done = (p.done, p.total)
        self.jobs.show_progress(p.done, p.total, f"Predict all {p.done}/{p.total}")
        if p.name:
            self.editing.prediction_stored(p.name)
        if p.error:
            self.ui.say(f"{p.name}: {p.error}", 8000)

    # -- learn as I paint --------------------------------------------------------------------

    def set_live(self, on: bool) -> None:
        """Start or stop learning as the user paints."""
        was = self.live.running
        ended = self.live.stop()
        self.live_label.setText("")
        project = self.editing.project
        if was and ended and not on and project is not None:
            self.models_panel.refresh()  # it saved what it learnt on its way out
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

    def live_base(self) -> Path | None:
        """While Learn as I paint runs: the SegNet it reads (the user labels with its
        predictions, so a fine-tune is judged against it); None when it is off."""
        return live_base(self.service.path) if self.live.running else None

    def _edited(self, doc: ImageDocument) -> None:
        """An edit (or undo) finished: the live learner takes the labels after a pause."""
        if self.live.running:
            self.live.edited(doc.name, lambda d=doc: d.labels.copy())
