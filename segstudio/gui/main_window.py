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

What the window does itself: open and close a folder (a new one first asks
for its classes, :mod:`~segstudio.gui.new_project`), with the view settings a
project keeps (layers, brush, class, lock), and enabling the actions that
apply. Its shape (tool palette, canvas, overview, narrow docks, a first size
that fits the screen) is built by :mod:`~segstudio.gui.window_layout`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QAction, QCloseEvent, QGuiApplication, QShowEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QWidget,
)

from segstudio import __version__
from segstudio.core.errors import SegStudioError
from segstudio.core.labelset import LabelSet
from segstudio.gui.actions import ICONS, TOOL_ACTIONS, install_actions
from segstudio.gui.canvas import Canvas, Layer
from segstudio.gui.classes import ClassesController
from segstudio.gui.datasets import DatasetsController
from segstudio.gui.editing import EditingController
from segstudio.gui.help import HelpDialog
from segstudio.gui.image_list import ImageListPanel
from segstudio.gui.jobs import JobRunner
from segstudio.gui.layer_view import LayerView
from segstudio.gui.layers_panel import LayersPanel
from segstudio.gui.new_project import NewProjectPage, is_new_project
from segstudio.gui.palette_panel import PalettePanel
from segstudio.gui.prediction import PredictionController
from segstudio.gui.status_bar import StatusBar
from segstudio.gui.theme import icon
from segstudio.gui.training import TrainingController
from segstudio.gui.training_panel import TrainingPanel
from segstudio.gui.ui import Ui
from segstudio.gui.welcome import WelcomePage
from segstudio.gui.window_layout import CanvasPage, Docks, Section, default_geometry, stacked
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
    "actionNextImage",
    "actionPrevImage",
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
#: Actions that act on the image on screen: tools, class keys, zoom, layers.
VIEW_ACTIONS = (
    *TOOL_ACTIONS,
    "actionLockUnlabeled",
    "actionBrushBigger",
    "actionBrushSmaller",
    "actionFit",
    "actionZoom100",
    "actionZoomIn",
    "actionZoomOut",
    "actionToggleLabels",
    "actionTogglePrediction",
    "actionToggleConfidence",
    "actionToggleOutline",
    "actionToggleOverview",
)


class MainWindow(QMainWindow):
    """The SegStudio window."""

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle("SegStudio")
        self.setStatusBar(StatusBar())  # a long message ends in "…", in full in its tooltip
        screen = self.screen() or QGuiApplication.primaryScreen()
        if screen is not None:  # fits the screen: a 1366 x 768 laptop shows all of it
            self.setGeometry(default_geometry(screen.availableGeometry()))
        self.actions_by_name, menus = install_actions(self)
        self.recent_menu = menus["recent"]
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self.canvas = Canvas()
        self.canvas_page = CanvasPage(self.canvas, self.actions_by_name)
        self.tool_palette, self.minimap = self.canvas_page.palette_bar, self.canvas_page.minimap
        self.welcome = WelcomePage(self.choose_folder, self.start_folder)
        self.new_project = NewProjectPage()
        self.stack = QStackedWidget()
        for page in (self.welcome, self.canvas_page, self.new_project):
            self.stack.addWidget(page)
        self.setCentralWidget(self.stack)
        self.images = ImageListPanel()
        self.layers_panel = LayersPanel()
        self.palette = PalettePanel()
        self.training_panel = TrainingPanel()
        left, right = Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea
        self.docks = Docks(self)
        self.images_dock = self.docks.add("Images", self.images, left, "imagesDock")
        # Layers is a compact, foldable section under the classes, not a tab of its own
        self.layers_section = Section("Layers", self.layers_panel, "layersSection")
        classes = stacked((self.palette, 1), (self.layers_section, 0))
        classes.setObjectName("classesAndLayers")
        self.classes_dock = self.docks.add("Classes", classes, right, "classesDock")
        self.training_dock = self.docks.add("Training", self.training_panel, right, "trainingDock")

        ui = Ui(self, self.actions_by_name, self.canvas, self.images, self.palette)
        self.jobs = JobRunner(self, self.statusBar())
        self.editing = EditingController(ui)
        self.editing.view_state = self._view  # [part c] the view is saved with the autosave
        self.prediction = PredictionController(ui, self.jobs, self.editing)
        self.training = TrainingController(
            ui, self.training_panel, self.jobs, self.prediction, self.editing
        )
        self.datasets = DatasetsController(ui, self.jobs, self.editing)
        self.classes = ClassesController(ui, self.jobs, self.editing)
        # the Models panel (the prediction controller's): a dock beside Training
        self.models_dock = self.docks.add(
            "Models", self.prediction.models_panel, right, "modelsDock"
        )
        self.tabifyDockWidget(self.training_dock, self.models_dock)
        self.models_dock.raise_()
        self.size_docks()
        self.docks.add_menu(menus["&View"])
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
        self.zoom_label.setObjectName("zoomLevel")
        self.statusBar().addPermanentWidget(self.zoom_label)
        #: Status-bar parts that describe the open project: hidden without one.
        self.project_status: tuple[QWidget, ...] = (
            self.zoom_label,
            self.prediction.model_label,
            self.prediction.live_label,
            self.editing.pos_label,
        )
        self.shortcuts_dialog: HelpDialog | None = None
        self._blocked = False  # masks migrate or a dataset is imported
        self._sized = False  # the docks get their first sizes when the window shows
        self._connect()
        self._restyle()
        self.welcome.refresh()
        self._show_project_status(False)
        self.sync_actions()

    def size_docks(self) -> None:
        """Narrow docks for the window's size; Classes over Training and Models."""
        self.docks.fit(self.images_dock, self.classes_dock, self.training_dock, self.layers_section)

    def toggle_panels(self, hide: bool) -> None:
        """View → Hide panels: the canvas takes the window (again: the panels come back)."""
        self.docks.hide_all(hide)

    def _restyle(self) -> None:
        """The actions' icons in the current palette's colours (menus and the palette)."""
        pal = QMainWindow.palette(self)  # self.palette is the class palette panel
        for name, icon_name in ICONS.items():
            if name in self.actions_by_name:
                self.actions_by_name[name].setIcon(icon(icon_name, pal))

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        if not self._sized:  # the first show: size the docks for the real window size
            self._sized = True
            self.size_docks()

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt API
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:  # the theme changed: recolour icons
            self._restyle()

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
        a["actionToggleOverview"].toggled.connect(self.minimap.set_wanted)
        a["actionTogglePanels"].toggled.connect(self.toggle_panels)
        self.new_project.chosen.connect(self._new_project_chosen)
        self.new_project.cancelled.connect(self._new_project_cancelled)
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
        for name in self._view_actions():
            self.action(name).setEnabled(doc is not None)  # nothing to act on without an image
        for dock in (self.images_dock, self.classes_dock):
            dock.widget().setEnabled(has_project)  # the welcome page: nothing to pick there
        if doc is not None:
            self.action("actionUndo").setEnabled(doc.editor.can_undo)
            self.action("actionRedo").setEnabled(doc.editor.can_redo)
            # [part c] Accept prediction stays enabled: without a prediction it says why
            self.action("actionToggleValidation").setChecked(self.training.is_marked(doc.name))
        for name in PROJECT_ACTIONS:
            self.action(name).setEnabled(has_project)
        for name in JOB_ACTIONS:
            self.action(name).setEnabled(has_project and not running)
        self.action("actionChooseModel").setEnabled(not running)

    def _view_actions(self) -> list[str]:
        """:data:`VIEW_ACTIONS` and every class key (1-9, 0, the picker)."""
        keys = [n for n in self.actions_by_name if n.startswith("actionClass")]
        return [*VIEW_ACTIONS, *keys]

    def _show_project_status(self, on: bool) -> None:
        """Show (or hide and clear) what the status bar says about the open project."""
        for widget in self.project_status:
            widget.setVisible(on)
        if not on:
            self.statusBar().clearMessage()
            self.zoom_label.clear()
            self.editing.pos_label.clear()

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
            self.start_folder(Path(folder))

    def start_folder(self, folder: Path) -> bool:
        """Open ``folder`` as the user asked to: a folder that is no project yet first asks
        (on a page of the window) which classes it will have; returns False on failure."""
        folder = Path(folder)
        project = self.project
        if project is not None and project.folder.resolve() == folder.resolve():
            return True  # already open (a double click on a recent project)
        if not folder.is_dir():
            QMessageBox.warning(self, "Open folder", f"{folder} is not a folder")
            return False
        if not is_new_project(folder):
            return self.open_folder(folder)
        self.close_folder()
        self.new_project.ask(folder)
        self.stack.setCurrentWidget(self.new_project)
        self.setWindowTitle(f"SegStudio — new project in {folder}")
        self.sync_actions()
        return True

    def _new_project_chosen(self, folder: Path, labelset: LabelSet) -> None:
        if self.open_folder(folder, labelset):
            names = ", ".join(labelset.names[:6])
            more = f" and {labelset.num_classes - 6} more" if labelset.num_classes > 6 else ""
            self.editing.set_notice(  # said again once the first image shows
                f"New project with {labelset.num_classes} class"
                f"{'es' if labelset.num_classes != 1 else ''}: {names}{more}. "
                "Add, rename or recolour classes in the Classes panel."
            )

    def _new_project_cancelled(self) -> None:
        self.setWindowTitle("SegStudio")
        self.welcome.refresh()
        self.stack.setCurrentWidget(self.welcome)

    def open_folder(self, folder: Path, labelset: LabelSet | None = None) -> bool:
        """Open ``folder`` as a project, without asking anything (scripts and tests call
        this; the user's way in is :meth:`start_folder`). A project without classes gets
        ``labelset``, else the default preset. Returns False (after telling the user) on
        failure."""
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
            project.set_labelset(
                labelset if labelset is not None else project.labelset_or_default()
            )
        self.palette.set_labelset(project.labelset)  # the GUI's copy of the classes
        view = project.get_setting("view")
        if not isinstance(view, dict):
            view = {}  # never shown yet: the defaults, whatever the last project had
        self._restore_view(view)
        self.editing.open(project)
        self.prediction.open(project, learn=view.get("learn_as_i_paint"))
        self.training.open(project)
        self.setWindowTitle(f"SegStudio — {project.folder}")
        self.stack.setCurrentWidget(self.canvas_page)
        self._show_project_status(True)
        records = self.editing.records()
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
        self.editing.restore_tool(view.get("tool"))  # [part c] the brush when none was stored

    def _view(self) -> dict[str, object]:
        return {
            "layers": self.layers_panel.to_dict(),
            "brush_radius": self.canvas.brush_radius,
            "class": self.palette.current(),
            "tool": self.canvas.tool.name,  # [part c]
            "lock_unlabeled": self.action("actionLockUnlabeled").isChecked(),
            "auto_predict": self.action("actionAutoPredict").isChecked(),
            "learn_as_i_paint": self.action("actionLearnAsIPaint").isChecked(),
        }

    def close_folder(self) -> None:
        """Close the project: stop its work, save everything and keep the view settings."""
        project = self.project
        if project is None:
            return
        self.editing.stop_loading()  # an image that arrives while the rest closes is dropped
        self.jobs.close(JOB_WAIT_S)  # cancel and wait; a late result is logged, not shown
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
        self._show_project_status(False)
        self.sync_actions()

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for i, folder in enumerate(recent_projects()):
            act = self.recent_menu.addAction(str(folder))
            act.setObjectName(f"actionRecent{i}")
            act.triggered.connect(lambda _c=False, f=folder: self.start_folder(f))

    # -- help and closing --------------------------------------------------------------------

    def show_shortcuts(self) -> None:
        """Help → Workflow and keys: one non-modal page, raised when already open."""
        if self.shortcuts_dialog is None:
            self.shortcuts_dialog = HelpDialog(self)
        self.shortcuts_dialog.show()
        self.shortcuts_dialog.raise_()
        self.shortcuts_dialog.activateWindow()

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
