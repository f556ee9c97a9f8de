"""The main window: builds the canvas, the docks, the actions and the status bar.

The window builds and delegates; the work is done by controllers, each a
QObject in a module of its own:

- :mod:`~segstudio.gui.editing`: the open image, the tools, undo, saving;
- :mod:`~segstudio.gui.prediction`: the active model, predictions, live learning;
- :mod:`~segstudio.gui.training`: fine-tuning and the validation images;
- :mod:`~segstudio.gui.datasets`, :mod:`~segstudio.gui.classes`: export and
  import, class edits that migrate masks;
- :mod:`~segstudio.gui.jobs`: the one long job at a time, and side workers;
- :mod:`~segstudio.gui.layer_view`: how the layers look.

What the window does itself: open and close a folder, with the view
settings a project keeps (layers, brush, class, lock), and enabling the
actions that apply.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QCloseEvent
from PySide6.QtWidgets import (
    QDialog,
    QDockWidget,
    QFileDialog,
    QLabel,
    QListWidget,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from segstudio import __version__
from segstudio.core.errors import SegStudioError
from segstudio.gui.actions import TOOL_ACTIONS, install_actions, shortcuts_dialog
from segstudio.gui.canvas import Canvas, Layer
from segstudio.gui.classes import ClassesController
from segstudio.gui.datasets import DatasetsController
from segstudio.gui.editing import EditingController
from segstudio.gui.image_list import ImageListPanel
from segstudio.gui.jobs import JobRunner
from segstudio.gui.layer_view import LayerView
from segstudio.gui.layers_panel import LayersPanel
from segstudio.gui.palette_panel import PalettePanel
from segstudio.gui.prediction import PredictionController
from segstudio.gui.training import TrainingController
from segstudio.gui.training_panel import TrainingPanel
from segstudio.gui.ui import Ui
from segstudio.io.project import (
    Project,
    ProjectLockedError,
    add_recent_project,
    recent_projects,
)
from segstudio.session.document import ImageDocument
from segstudio.session.models import ModelService

log = logging.getLogger(__name__)

#: How long closing waits for a cancelled job to report back.
JOB_WAIT_S = 30.0
#: Actions that need an open image.
DOC_ACTIONS = (
    "actionSave",
    "actionUndo",
    "actionRedo",
    "actionMarkReviewed",
    "actionAcceptPrediction",
    "actionPredictImage",
    "actionToggleValidation",
)
#: Actions that need an open project.
PROJECT_ACTIONS = (
    "actionCloseFolder",
    "actionLeastConfident",
    "actionModels",
    "actionAutoUseBetter",
)
#: Actions that need an open project and no running job.
JOB_ACTIONS = (
    "actionPredictAll",
    "actionFineTune",
    "actionFineTuneDialog",
    "actionExportDataset",
    "actionImportDataset",
)


class WelcomePage(QWidget):
    """Shown without a folder: Open Folder and the recent projects."""

    def __init__(
        self, open_folder: Callable[[], None], open_path: Callable[[Path], object]
    ) -> None:
        super().__init__()
        self.setObjectName("welcome")
        title = QLabel("<h2>SegStudio</h2><p>Open a folder of images to start labelling.</p>")
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        button = QPushButton("Open Folder…")
        button.setObjectName("welcomeOpenFolder")
        button.clicked.connect(open_folder)
        self.recent = QListWidget()
        self.recent.setObjectName("recentProjects")
        self.recent.itemActivated.connect(lambda item: open_path(Path(item.text())))
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addWidget(title)
        layout.addWidget(button, alignment=Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(QLabel("Recent projects:"), alignment=Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.recent, stretch=1, alignment=Qt.AlignmentFlag.AlignHCenter)
        layout.addStretch(1)
        self.recent.setMinimumWidth(480)

    def refresh(self) -> None:
        self.recent.clear()
        for folder in recent_projects():
            self.recent.addItem(str(folder))


class MainWindow(QMainWindow):
    """The SegStudio window."""

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle("SegStudio")
        self.resize(1400, 900)
        self.canvas = Canvas()
        self.welcome = WelcomePage(self.choose_folder, self.open_folder)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.welcome)
        self.stack.addWidget(self.canvas)
        self.setCentralWidget(self.stack)
        self.images = ImageListPanel()
        self.layers_panel = LayersPanel()
        self.palette = PalettePanel()
        self.training_panel = TrainingPanel()
        left, right = Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea
        images_dock = self._dock("Images", self.images, left, "imagesDock")
        self._dock("Classes", self.palette, right, "classesDock")
        layers_dock = self._dock("Layers", self.layers_panel, right, "layersDock")
        self.training_dock = self._dock("Training", self.training_panel, right, "trainingDock")
        self.tabifyDockWidget(layers_dock, self.training_dock)
        layers_dock.raise_()
        self.resizeDocks([images_dock], [300], Qt.Orientation.Horizontal)
        self.actions_by_name, self.recent_menu = install_actions(self)
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)

        ui = Ui(self, self.actions_by_name, self.canvas, self.images, self.palette)
        self.jobs = JobRunner(self, self.statusBar())
        self.editing = EditingController(ui)
        self.prediction = PredictionController(ui, self.jobs, self.editing)
        self.training = TrainingController(
            ui, self.training_panel, self.jobs, self.prediction, self.editing
        )
        self.datasets = DatasetsController(ui, self.jobs, self.editing)
        self.classes = ClassesController(ui, self.jobs, self.editing)
        a = self.actions_by_name
        toggles = {
            Layer.LABELS: a["actionToggleLabels"],
            Layer.PREDICTION: a["actionTogglePrediction"],
            Layer.CONFIDENCE: a["actionToggleConfidence"],
        }
        self.layer_view = LayerView(
            self.canvas, self.layers_panel, self.palette, toggles, a["actionToggleOutline"]
        )
        self.zoom_label = QLabel()
        self.statusBar().addPermanentWidget(self.zoom_label)
        self.shortcuts_dialog: QDialog | None = None
        self._blocked = False  # masks migrate or a dataset is imported
        self._connect()
        self.welcome.refresh()
        self.sync_actions()

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea, name: str) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        )
        self.addDockWidget(area, dock)
        return dock

    def _connect(self) -> None:
        a, c = self.actions_by_name, self.canvas
        handlers: dict[str, Callable[[], object]] = {
            "actionOpenFolder": self.choose_folder,
            "actionCloseFolder": self.close_folder,
            "actionQuit": self.close,
            "actionFit": c.fit,
            "actionZoom100": lambda: c.zoom_to(1.0),
            "actionZoomIn": lambda: c.zoom_by(1.25),
            "actionZoomOut": lambda: c.zoom_by(0.8),
            "actionNextImage": lambda: self.images.step(+1),
            "actionPrevImage": lambda: self.images.step(-1),
            "actionCancelJob": self.jobs.cancel,
            "actionShortcuts": self.show_shortcuts,
            "actionAbout": self.show_about,
        }
        for name, handler in handlers.items():
            a[name].triggered.connect(lambda _checked=False, h=handler: h())
        for name, tool in TOOL_ACTIONS.items():
            a[name].triggered.connect(lambda _c=False, t=tool: c.set_tool(t))
        for i in range(1, 10):
            a[f"actionClass{i}"].triggered.connect(lambda _c=False, k=i - 1: self.palette.choose(k))
        c.zoomChanged.connect(lambda s: self.zoom_label.setText(f"{s * 100:.0f}%"))
        for signal in (
            self.editing.changed,
            self.jobs.started,
            self.jobs.finished,
            self.training.validationChanged,
        ):
            signal.connect(self.sync_actions)
        self.training.started.connect(self.training_dock.raise_)
        self.datasets.blocked.connect(self._set_blocked)
        self.classes.blocked.connect(self._set_blocked)

    # -- what the rest of the app reads ------------------------------------------------------

    @property
    def project(self) -> Project | None:
        return self.editing.project

    @property
    def doc(self) -> ImageDocument | None:
        """The image on screen."""
        return self.editing.doc

    @property
    def models(self) -> ModelService:
        return self.prediction.service

    def action(self, name: str) -> QAction:
        return self.actions_by_name[name]

    def sync_actions(self, *_args: object) -> None:
        """Enable the actions that apply now: to the open image, the project, the job."""
        doc, has_project, running = self.doc, self.project is not None, self.jobs.running
        self.action("actionCancelJob").setEnabled(running)
        if self._blocked:
            return  # everything but Quit and Cancel waits
        for name in DOC_ACTIONS:
            self.action(name).setEnabled(doc is not None)
        if doc is not None:
            self.action("actionUndo").setEnabled(doc.editor.can_undo)
            self.action("actionRedo").setEnabled(doc.editor.can_redo)
            self.action("actionAcceptPrediction").setEnabled(doc.prediction is not None)
            self.action("actionToggleValidation").setChecked(self.training.is_marked(doc.name))
        for name in PROJECT_ACTIONS:
            self.action(name).setEnabled(has_project)
        for name in JOB_ACTIONS:
            self.action(name).setEnabled(has_project and not running)
        self.action("actionChooseModel").setEnabled(not running)

    def _set_blocked(self, blocked: bool) -> None:
        """Freeze (or thaw) everything that edits or switches images, while masks migrate
        or a dataset is imported; quitting (and cancelling the import) stays possible."""
        self._blocked = blocked
        for widget in (self.stack, self.images, self.palette):
            widget.setEnabled(not blocked)
        for name, action in self.actions_by_name.items():
            if name != "actionQuit":
                action.setEnabled(not blocked)
        self.sync_actions()

    # -- the project -------------------------------------------------------------------------

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images")
        if folder:
            self.open_folder(Path(folder))

    def open_folder(self, folder: Path) -> bool:
        """Open ``folder`` as a project; returns False (after telling the user) on failure."""
        self.close_folder()
        try:
            project = Project.open(folder)
        except ProjectLockedError as exc:  # one writer per project: the other one is named
            self.statusBar().showMessage(f"Not opened: {exc}", 30000)
            QMessageBox.warning(self, "Project in use", str(exc))
            return False
        except SegStudioError as exc:
            QMessageBox.critical(self, "Open folder", str(exc))
            return False
        try:
            project.scan()
        except SegStudioError as exc:
            project.close()
            QMessageBox.critical(self, "Open folder", str(exc))
            return False
        add_recent_project(project.folder)
        if project.labelset is None:
            project.set_labelset(project.labelset_or_default())
        self.palette.set_labelset(project.labelset)  # the GUI's copy of the classes
        view = project.get_setting("view")
        if not isinstance(view, dict):
            view = {}  # never shown yet: the defaults, whatever the last project had
        self._restore_view(view)
        self.editing.open(project)
        self.prediction.open(project, learn=view.get("learn_as_i_paint"))
        self.training.open(project)
        self.setWindowTitle(f"SegStudio — {project.folder}")
        self.stack.setCurrentWidget(self.canvas)
        records = project.images()
        self.images.set_source(lambda name, folder=project.folder: folder / name)
        self.images.set_records(records)
        last = project.get_setting("last_image")
        if last in {r.name for r in records}:
            self.images.select(last)
        elif records:
            self.images.select(records[0].name)
        if not records:
            self.statusBar().showMessage(f"No images in {project.folder}", 10000)
        self.sync_actions()
        return True

    def _restore_view(self, view: dict[str, object]) -> None:
        """Layers, brush size, class and lock as the user left them in this project."""
        self.layer_view.restore(view.get("layers"))
        radius, cls = view.get("brush_radius"), view.get("class")
        if isinstance(radius, int | float):
            self.canvas.set_brush_radius(float(radius))
        if isinstance(cls, int):
            self.palette.choose(cls)
        # a project's own choice, else the default (not the previous project's)
        self.action("actionLockUnlabeled").setChecked(view.get("lock_unlabeled") is True)
        self.action("actionAutoPredict").setChecked(view.get("auto_predict") is not False)

    def _view(self) -> dict[str, object]:
        return {
            "layers": self.layers_panel.to_dict(),
            "brush_radius": self.canvas.brush_radius,
            "class": self.palette.current(),
            "lock_unlabeled": self.action("actionLockUnlabeled").isChecked(),
            "auto_predict": self.action("actionAutoPredict").isChecked(),
            "learn_as_i_paint": self.action("actionLearnAsIPaint").isChecked(),
        }

    def close_folder(self) -> None:
        """Close the project: stop its work, save everything and keep the view settings."""
        project = self.project
        if project is None:
            return
        self.jobs.cancel()
        self.jobs.wait(JOB_WAIT_S)  # closing: let the worker reach its next step, report back
        self.prediction.close()
        self.classes.close()
        self.editing.close()
        try:
            project.set_setting("view", self._view())
        except SegStudioError as exc:  # a view setting is not worth an error dialog
            log.warning("could not store the view settings: %s", exc)
        self.training.close()
        project.close()
        self.images.set_source(None)
        self.images.set_records([])
        self.palette.set_labelset(None)
        self.setWindowTitle("SegStudio")
        self.welcome.refresh()
        self.stack.setCurrentWidget(self.welcome)
        self.sync_actions()

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for i, folder in enumerate(recent_projects()):
            act = self.recent_menu.addAction(str(folder))
            act.setObjectName(f"actionRecent{i}")
            act.triggered.connect(lambda _c=False, f=folder: self.open_folder(f))

    # -- help and closing --------------------------------------------------------------------

    def show_shortcuts(self) -> None:
        self.shortcuts_dialog = shortcuts_dialog(self)
        self.shortcuts_dialog.show()

    def show_about(self) -> None:
        QMessageBox.about(
            self,
            "About SegStudio",
            f"SegStudio {__version__}\nPixel-wise labelling with a SegNet model in the loop.",
        )

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt API
        if not self.training.confirm_quit():
            event.ignore()
            return
        self.close_folder()
        self.editing.shutdown()
        event.accept()
