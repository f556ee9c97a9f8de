"""The main window: wires the canvas, the panels, the edit path, saving and model jobs.

The window coordinates; it does not compute. Edits go through the open
:class:`~segstudio.gui.document.ImageDocument`'s ``LabelEditor``; tool
geometry comes from :mod:`segstudio.core.tools`; storage from
:class:`~segstudio.io.project.Project`; model work runs in superqt workers.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDockWidget,
    QFileDialog,
    QHeaderView,
    QLabel,
    QListWidget,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import create_worker

from segstudio import __version__
from segstudio.core.bundled import bundled_model_path
from segstudio.core.errors import SegStudioError
from segstudio.core.labelset import UNLABELED, LabelSet
from segstudio.core.tools import (
    Placed,
    brush_segment,
    flood_region,
    grabcut_region,
    polygon_region,
)
from segstudio.gui.actions import ACTIONS, MENUS, shortcut_text
from segstudio.gui.canvas import Canvas, Layer, Tool
from segstudio.gui.dataset_dialogs import ExportChoice, ExportDialog, ImportChoice, ImportDialog
from segstudio.gui.document import ImageDocument, PredictionLayer, Saver
from segstudio.gui.image_list import ImageListPanel
from segstudio.gui.layers_panel import LayersPanel
from segstudio.gui.live_learning import LiveLearning, live_base
from segstudio.gui.models_dialog import ModelsDialog
from segstudio.gui.overlay import heat_table, palette_table
from segstudio.gui.palette_panel import PalettePanel
from segstudio.gui.training_panel import FineTuneChoice, FineTuneDialog, TrainingPanel
from segstudio.gui.workers import (
    ModelService,
    Progress,
    TrainingOutcome,
    discard_run,
    interrupted_run,
    predict_all,
    predict_one,
    run_cancellable,
    run_training,
)
from segstudio.io.model_registry import ModelKind, ModelSummary, read_summary
from segstudio.io.project import (
    ImageStatus,
    Project,
    add_recent_project,
    recent_projects,
)

log = logging.getLogger(__name__)

#: What the one-click Fine-tune runs: a time budget that suits a laptop CPU.
DEFAULT_FINE_TUNE = {"minutes": 5.0, "batch_size": 4}
#: The architecture of a new model when the project has no model yet.
DEFAULT_NEW_ARCH = ("segnet", {"width": 0.5})
#: The project setting behind Model → Use a new model automatically when it is better.
AUTO_USE_SETTING = "auto_use_better_model"

#: Save after this many idle seconds following an edit ...
AUTOSAVE_IDLE_MS = 1500
#: ... and at least this often while the user keeps painting.
AUTOSAVE_MAX_MS = 5000

TOOL_ACTIONS = {
    "actionToolBrush": Tool.BRUSH,
    "actionToolEraser": Tool.ERASER,
    "actionToolFill": Tool.FILL,
    "actionToolPolygon": Tool.POLYGON,
    "actionToolGrabCut": Tool.GRABCUT,
    "actionToolEyedropper": Tool.EYEDROPPER,
    "actionToolAccept": Tool.ACCEPT,
    "actionToolPan": Tool.PAN,
}


class WelcomePage(QWidget):
    """Shown without a folder: Open Folder and the recent projects."""

    def __init__(self, open_folder: Callable[[], None], open_path: Callable[[Path], None]) -> None:
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

    labelsSaved = Signal(str)  # noqa: N815 - emitted from the saver thread, queued to the GUI
    saveFailed = Signal(str, str)  # noqa: N815 - (image, message), from the saver thread

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle("SegStudio")
        self.resize(1400, 900)
        self.project: Project | None = None
        self.doc: ImageDocument | None = None
        self.saver = Saver(on_error=lambda name, msg: self.saveFailed.emit(name, msg))
        self.models = ModelService()
        self.job: Any = None  # the running superqt worker
        self.job_name = ""
        self._stroking = False
        self._last_save = time.monotonic()
        self._hidden: frozenset[int] = frozenset()
        self._loading: str | None = None  # the image being opened
        # GUI-side copies, so a mouse move never waits on the project's lock
        self._labelset: LabelSet | None = None
        self._val_names: list[str] = []
        self._load_timer = QTimer(self, singleShot=True, interval=120)
        self._load_timer.timeout.connect(self._start_load)
        self._loaders: set[Any] = set()  # running image loaders (kept alive)

        self.canvas = Canvas()
        self.welcome = WelcomePage(self.choose_folder, self.open_folder)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.welcome)
        self.stack.addWidget(self.canvas)
        self.setCentralWidget(self.stack)

        self.images = ImageListPanel()
        self.layers_panel = LayersPanel()
        self.palette = PalettePanel()
        images_dock = self._dock(
            "Images", self.images, Qt.DockWidgetArea.LeftDockWidgetArea, "imagesDock"
        )
        self._dock("Classes", self.palette, Qt.DockWidgetArea.RightDockWidgetArea, "classesDock")
        layers_dock = self._dock(
            "Layers", self.layers_panel, Qt.DockWidgetArea.RightDockWidgetArea, "layersDock"
        )
        self.training_panel = TrainingPanel()
        self.training_dock = self._dock(
            "Training", self.training_panel, Qt.DockWidgetArea.RightDockWidgetArea, "trainingDock"
        )
        self.tabifyDockWidget(layers_dock, self.training_dock)
        layers_dock.raise_()
        self._job_cancel: threading.Event | None = None
        self._job_keep = threading.Event()  # set on quit: keep a training checkpoint
        self.job_finished_hook: Callable[[], None] | None = None
        #: The automatic prediction of the shown image: a worker of its own, beside
        #: the jobs, so that it never blocks or delays what the user starts.
        self._auto: Any = None
        self._auto_again = False  # another image was shown meanwhile
        self._auto_failed: Path | None = None  # the model it failed with: no more tries
        self._trained: Path | None = None
        self.models_dialog: ModelsDialog | None = None
        #: Learn as I paint: the live learner's worker, fed after every edit
        self.live = LiveLearning(self)
        self.live.predicted.connect(self._prediction_ready)
        self.live.status.connect(lambda text: self.statusBar().showMessage(text, 8000))
        #: A message for the status bar once the first image is shown (opening clears it).
        self._notice: str | None = None

        self.resizeDocks([images_dock], [300], Qt.Orientation.Horizontal)
        self.actions_by_name: dict[str, QAction] = {}
        self._build_actions()
        self._build_status_bar()
        self._connect()

        self.idle_timer = QTimer(self, singleShot=True, interval=AUTOSAVE_IDLE_MS)
        self.idle_timer.timeout.connect(self.autosave)
        self.max_timer = QTimer(self, interval=AUTOSAVE_MAX_MS)
        self.max_timer.timeout.connect(self.autosave)
        self.max_timer.start()
        self.welcome.refresh()
        self._sync_enabled()

    # -- construction --------------------------------------------------------------------

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

    def _build_actions(self) -> None:
        menus = {title: self.menuBar().addMenu(title) for title in MENUS}
        tools = QActionGroup(self)
        for spec in ACTIONS:
            action = QAction(spec.text, self)
            action.setObjectName(spec.name)
            action.setShortcuts([QKeySequence(k) for k in spec.shortcuts])
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            action.setToolTip(f"{spec.tip or spec.text.replace('&', '')} ({shortcut_text(spec)})")
            action.setStatusTip(spec.tip)
            action.setCheckable(spec.checkable)
            if spec.name in TOOL_ACTIONS:
                tools.addAction(action)
            menus[spec.menu].addAction(action)
            if spec.name == "actionCloseFolder":
                self.recent_menu = menus[spec.menu].addMenu("Open &Recent")
                self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
            self.addAction(action)  # shortcuts work even when menus are hidden
            self.actions_by_name[spec.name] = action
        a = self.actions_by_name
        a["actionToolBrush"].setChecked(True)
        for name in ("actionToggleLabels", "actionTogglePrediction", "actionAutoPredict"):
            a[name].setChecked(True)
        toolbar = self.addToolBar("Tools")
        toolbar.setObjectName("toolsToolbar")
        for name in (*TOOL_ACTIONS, "actionLockUnlabeled"):
            toolbar.addAction(a[name])
        toolbar.addSeparator()
        for name in ("actionUndo", "actionRedo", "actionPredictImage", "actionPredictAll"):
            toolbar.addAction(a[name])
        toolbar.addAction(a["actionMarkReviewed"])

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.pos_label = QLabel()
        self.pos_label.setObjectName("cursorInfo")
        self.pos_label.setMinimumWidth(420)
        self.zoom_label = QLabel()
        self.model_label = QLabel("Model: none")
        self.model_label.setObjectName("activeModel")
        self.live_label = QLabel()
        self.live_label.setObjectName("liveLearning")
        self.live_label.setToolTip("Model → Learn as I paint (Ctrl+Alt+L)")
        self.progress = QProgressBar()
        self.progress.setObjectName("jobProgress")
        self.progress.setMaximumWidth(220)
        self.progress.setVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("jobCancel")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel_job)
        bar.addWidget(self.pos_label, 1)
        bar.addPermanentWidget(self.progress)
        bar.addPermanentWidget(self.cancel_button)
        bar.addPermanentWidget(self.live_label)
        bar.addPermanentWidget(self.model_label)
        bar.addPermanentWidget(self.zoom_label)

    def _connect(self) -> None:
        a = self.actions_by_name
        handlers: dict[str, Callable[[], Any]] = {
            "actionOpenFolder": self.choose_folder,
            "actionSave": self.save_now,
            "actionCloseFolder": self.close_folder,
            "actionQuit": self.close,
            "actionUndo": self.undo,
            "actionRedo": self.redo,
            "actionAcceptPrediction": self.accept_prediction,
            "actionBrushBigger": lambda: self._resize_brush(1.25),
            "actionBrushSmaller": lambda: self._resize_brush(0.8),
            "actionFit": self.canvas.fit,
            "actionZoom100": lambda: self.canvas.zoom_to(1.0),
            "actionZoomIn": lambda: self.canvas.zoom_by(1.25),
            "actionZoomOut": lambda: self.canvas.zoom_by(0.8),
            "actionNextImage": lambda: self.images.step(+1),
            "actionPrevImage": lambda: self.images.step(-1),
            "actionMarkReviewed": self.toggle_reviewed,
            "actionLeastConfident": self.go_least_confident,
            "actionChooseModel": self.choose_model,
            "actionModels": self.show_models,
            "actionPredictImage": self.predict_image,
            "actionPredictAll": self.predict_all,
            "actionCancelJob": self.cancel_job,
            "actionFineTune": self.fine_tune,
            "actionExportDataset": self.export_dataset,
            "actionImportDataset": self.import_dataset,
            "actionFineTuneDialog": self.fine_tune_with_options,
            "actionToggleValidation": self.toggle_validation,
            "actionShortcuts": self.show_shortcuts,
            "actionAbout": self.show_about,
        }
        for name, handler in handlers.items():
            a[name].triggered.connect(lambda _checked=False, h=handler: h())
        for name, tool in TOOL_ACTIONS.items():
            a[name].triggered.connect(lambda _c=False, t=tool: self.canvas.set_tool(t))
        for i in range(1, 10):
            a[f"actionClass{i}"].triggered.connect(lambda _c=False, k=i - 1: self.palette.choose(k))
        toggles = {
            "actionToggleLabels": Layer.LABELS,
            "actionTogglePrediction": Layer.PREDICTION,
            "actionToggleConfidence": Layer.CONFIDENCE,
        }
        for name, layer in toggles.items():
            a[name].toggled.connect(
                lambda on, lay=layer: self.layers_panel.visible[lay].setChecked(on)
            )
        a["actionToggleOutline"].toggled.connect(self.layers_panel.outline[Layer.LABELS].setChecked)
        a["actionAutoUseBetter"].toggled.connect(self._set_auto_use)
        a["actionLearnAsIPaint"].toggled.connect(self._set_live)
        self.layers_panel.changed.connect(self._apply_layer)

        c = self.canvas
        c.cursorMoved.connect(self._show_cursor_info)
        c.strokeStarted.connect(self._stroke_started)
        c.strokeMoved.connect(self._stroke_moved)
        c.strokeFinished.connect(self._stroke_finished)
        c.clicked.connect(self._clicked)
        c.polygonFinished.connect(self._polygon_finished)
        c.boxFinished.connect(self._box_finished)
        c.zoomChanged.connect(lambda s: self.zoom_label.setText(f"{s * 100:.0f}%"))
        self.images.imageChosen.connect(self.show_image)
        self.palette.classChosen.connect(lambda _i: self._show_cursor_info(-1, -1))
        self.palette.hiddenChanged.connect(self._set_hidden)
        self.palette.labelsetEdited.connect(self.edit_labelset)
        self.labelsSaved.connect(self._refresh_record)
        self.saveFailed.connect(self._save_failed)
        self.training_panel.cancelRequested.connect(self.cancel_job)
        self.training_panel.useModelRequested.connect(self.use_trained_model)

    def action(self, name: str) -> QAction:
        return self.actions_by_name[name]

    def _sync_enabled(self) -> None:
        has_doc = self.doc is not None
        running = self.job is not None
        for name in (
            "actionSave",
            "actionUndo",
            "actionRedo",
            "actionMarkReviewed",
            "actionAcceptPrediction",
            "actionPredictImage",
        ):
            self.action(name).setEnabled(has_doc)
        if has_doc:
            assert self.doc is not None
            self.action("actionUndo").setEnabled(self.doc.editor.can_undo)
            self.action("actionRedo").setEnabled(self.doc.editor.can_redo)
            self.action("actionAcceptPrediction").setEnabled(self.doc.prediction is not None)
        self.action("actionCloseFolder").setEnabled(self.project is not None)
        self.action("actionPredictAll").setEnabled(self.project is not None and not running)
        self.action("actionLeastConfident").setEnabled(self.project is not None)
        self.action("actionCancelJob").setEnabled(running)
        self.action("actionChooseModel").setEnabled(not running)
        self.action("actionModels").setEnabled(self.project is not None)
        self.action("actionAutoUseBetter").setEnabled(self.project is not None)
        for name in (
            "actionFineTune",
            "actionFineTuneDialog",
            "actionExportDataset",
            "actionImportDataset",
        ):
            self.action(name).setEnabled(self.project is not None and not running)
        self.action("actionToggleValidation").setEnabled(has_doc)
        if has_doc and self.project is not None:
            assert self.doc is not None
            marked = self.doc.name in self._validation_images()
            self.action("actionToggleValidation").setChecked(marked)

    # -- project -------------------------------------------------------------------------

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images")
        if folder:
            self.open_folder(Path(folder))

    def open_folder(self, folder: Path) -> bool:
        """Open ``folder`` as a project; returns False (after telling the user) on failure."""
        self.close_folder()
        try:
            project = Project.open(folder)
            project.scan()
        except SegStudioError as exc:
            QMessageBox.critical(self, "Open folder", str(exc))
            return False
        self.project = project
        add_recent_project(project.folder)
        if project.labelset is None:
            project.set_labelset(project.labelset_or_default())
        self._labelset = project.labelset
        self.palette.set_labelset(self._labelset)
        self._restore_view_settings(project)
        self._refresh_tables()
        self._restore_model(project)
        self._restore_live(project)
        self.setWindowTitle(f"SegStudio — {project.folder}")
        self.stack.setCurrentWidget(self.canvas)
        records = project.images()
        names = project.get_setting("validation_images")
        self._val_names = list(names) if isinstance(names, list) else []
        self.images.model.set_source(lambda name, folder=project.folder: folder / name)
        self.images.model.set_marked(set(self._validation_images()))
        self.images.set_records(records)
        last = project.get_setting("last_image")
        names = {r.name for r in records}
        if last in names:
            self.images.select(last)
        elif records:
            self.images.select(records[0].name)
        if not records:
            self.statusBar().showMessage(f"No images in {project.folder}", 10000)
        self._sync_enabled()
        return True

    def _restore_view_settings(self, project: Project) -> None:
        """Layers, brush size, class and lock as the user left them in this project."""
        view = project.get_setting("view")
        if not isinstance(view, dict):
            view = {}  # never shown yet: the defaults, whatever the last project had
        self.layers_panel.restore(view.get("layers"))
        for layer in Layer:  # the canvas shows what the panel says
            self._apply_layer(layer)
        if isinstance(view.get("brush_radius"), int | float):
            self.canvas.set_brush_radius(float(view["brush_radius"]))
        if isinstance(view.get("class"), int):
            self.palette.choose(view["class"])
        # a project's own choice, else the default (not the previous project's)
        self.action("actionLockUnlabeled").setChecked(view.get("lock_unlabeled") is True)
        self.action("actionAutoPredict").setChecked(view.get("auto_predict") is not False)

    def _restore_model(self, project: Project) -> None:
        """Use the model stored with the project: exactly that one, never a guess.

        A project without a stored choice takes the bundled model when its
        classes fit, and stores that choice. A stored model whose file has gone
        leaves the project without a model, and the window says so.
        """
        auto = self.action("actionAutoUseBetter")
        blocked = auto.blockSignals(True)
        auto.setChecked(project.get_setting(AUTO_USE_SETTING) is True)
        auto.blockSignals(blocked)
        choice = project.model_choice()
        if choice is None:
            path = self._default_model(project)
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
        self._notice = text
        self.statusBar().showMessage(text, 30000)

    def _restore_live(self, project: Project) -> None:
        """Learn as I paint as the project left it; on by default when no model fits."""
        view = project.get_setting("view")
        stored = view.get("learn_as_i_paint") if isinstance(view, dict) else None
        on = stored if isinstance(stored, bool) else self.models.path is None
        act = self.action("actionLearnAsIPaint")
        blocked = act.blockSignals(True)
        act.setChecked(on)
        act.blockSignals(blocked)
        self._set_live(on)

    def _set_live(self, on: bool) -> None:
        """Start or stop learning as the user paints."""
        self.live.stop()
        self.live_label.setText("")
        if not on or self.project is None:
            return
        base = live_base(self.models.path)
        if base is None:
            self.statusBar().showMessage(
                "Learn as I paint needs a SegNet to read features from (the bundled model): "
                "none is installed",
                10000,
            )
            return
        self.live.start(self.project, base)
        self.live_label.setText("Learning as you paint")
        if self.doc is not None:
            self.live.shown(self.doc.name)

    def _default_model(self, project: Project) -> Path | None:
        """The bundled model when its classes fit the project's, else None.

        Only the bundled model is ever a default: a project model becomes
        active when the user chooses it. The header is read without torch.
        """
        bundled = bundled_model_path()
        if bundled is None:
            return None
        fits = read_summary(bundled, ModelKind.BUNDLED).misfit(project.labelset) is None
        return bundled if fits else None

    def _set_auto_use(self, on: bool) -> None:
        if self.project is None:
            return
        try:
            self.project.set_setting(AUTO_USE_SETTING, on)
        except SegStudioError as exc:
            self.statusBar().showMessage(f"Could not store the setting: {exc}", 8000)

    def close_folder(self) -> None:
        if self.project is None:
            return
        self.cancel_job(wait=True)
        self._loading = None
        self._load_timer.stop()
        self._wait_for_auto()
        self.live.flush()
        self.live.stop()
        failed = self._flush_saves()
        if failed:
            QMessageBox.critical(
                self,
                "Save",
                "These images could not be saved and keep their last saved labels: "
                + ", ".join(failed),
            )
            self.saver.failed.clear()
        view = {
            "layers": self.layers_panel.to_dict(),
            "brush_radius": self.canvas.brush_radius,
            "class": self.palette.current(),
            "lock_unlabeled": self.lock_unlabeled,
            "auto_predict": self.action("actionAutoPredict").isChecked(),
            "learn_as_i_paint": self.action("actionLearnAsIPaint").isChecked(),
        }
        try:
            self.project.set_setting("view", view)
        except SegStudioError as exc:  # a view setting is not worth an error dialog
            log.warning("could not store the view settings: %s", exc)
        self._trained = None
        self._notice = None
        self.training_panel.use.setVisible(False)
        if self.models_dialog is not None:
            self.models_dialog.close()
        self._labelset = None
        self.doc = None
        self.canvas.set_image(None)
        for item in (
            self.canvas.labels_item,
            self.canvas.prediction_item,
            self.canvas.confidence_item,
        ):
            item.set_values(None)
        self.project.close()
        self.project = None
        self.images.model.set_source(None)
        self.images.set_records([])
        self.palette.set_labelset(None)
        self.setWindowTitle("SegStudio")
        self.welcome.refresh()
        self.stack.setCurrentWidget(self.welcome)
        self._sync_enabled()

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for i, folder in enumerate(recent_projects()):
            act = self.recent_menu.addAction(str(folder))
            act.setObjectName(f"actionRecent{i}")
            act.triggered.connect(lambda _c=False, f=folder: self.open_folder(f))

    # -- the open image ------------------------------------------------------------------

    def show_image(self, name: str) -> None:
        """Open ``name``: its pixels, labels and prediction load in a worker.

        The current image stays on screen (and editable) until the new one is
        ready; a result for an image the user has already left is dropped.
        """
        if self.project is None:
            return
        if self.doc is not None and self.doc.name == name:
            self._loading = None  # back to the image on screen: drop a load under way
            self._load_timer.stop()
            return
        self._save_doc()
        self._loading = name
        self.statusBar().showMessage(f"Opening {name}…")
        # paging through quickly starts one load, for where the user stops
        self._load_timer.start()

    def _start_load(self) -> None:
        name = self._loading
        if name is None or self.project is None:
            return
        worker = create_worker(
            ImageDocument, self.project, name, self.saver, _start_thread=False, _ignore_errors=True
        )
        worker.returned.connect(self._image_loaded)
        worker.errored.connect(lambda exc, n=name: self._image_failed(n, exc))
        self._loaders.add(worker)
        worker.finished.connect(lambda w=worker: self._loaders.discard(w))
        worker.start()

    def _image_loaded(self, doc: ImageDocument) -> None:
        if (
            doc.name != self._loading
            or self.project is not doc.project
            or doc.labelset_version != self.project.labelset_version
        ):
            return  # stale: the user moved on, or the classes were renumbered meanwhile
        self._loading = None
        self._save_doc()  # edits made to the previous image while this one loaded
        if self.doc is not None:
            self.doc.editor.changed.disconnect(self._labels_changed)
            self.doc.editor.history_changed.disconnect(self._sync_enabled)
            self.doc.editor.history_changed.disconnect(self._edited)
        self.doc = doc
        doc.editor.changed.connect(self._labels_changed)
        doc.editor.history_changed.connect(self._sync_enabled)
        doc.editor.history_changed.connect(self._edited)
        self.canvas.set_image(doc.image.rgb)
        self.canvas.labels_item.set_values(doc.labels)
        self._show_prediction()
        self.canvas.fit()
        assert self.project is not None
        self.project.set_setting("last_image", doc.name)
        self.images.select(doc.name, emit=False)
        if self._notice is not None:  # said while opening: "Opening …" replaced it
            self.statusBar().showMessage(self._notice, 30000)
            self._notice = None
        else:
            self.statusBar().clearMessage()
        self._sync_enabled()
        if self.live.running:
            self.live.shown(doc.name)  # the live learner predicts what it shows
        else:
            self._auto_predict()

    def _edited(self, *_args: object) -> None:
        """An edit (or undo) finished: the live learner takes the labels after a pause."""
        doc = self.doc
        if doc is not None and self.live.running and not self._stroking:
            self.live.edited(doc.name, lambda d=doc: d.labels.copy())

    def _auto_predict(self) -> None:
        """Predict the image just shown when it has no prediction yet.

        It runs in its own worker (predictions are serialised by the model
        service), so every action stays available meanwhile; an image shown
        while one is predicted is taken up when that ends. A model that fails
        says so once in the status bar and is not tried again until another
        model is chosen.
        """
        doc, project, model = self.doc, self.project, self.models.path
        if (
            doc is None
            or project is None
            or model is None
            or model == self._auto_failed
            or doc.prediction is not None
            or not self.action("actionAutoPredict").isChecked()
            or self.job_name == "Predict all"  # it predicts this image anyway
        ):
            return
        if self._auto is not None:
            self._auto_again = True
            return
        try:
            if project.record(doc.name).status is ImageStatus.REVIEWED:
                return
        except SegStudioError:  # the image vanished
            return
        worker = create_worker(
            predict_one, self.models, project, doc.name, _start_thread=False, _ignore_errors=True
        )
        worker.returned.connect(self._prediction_ready)
        worker.errored.connect(lambda exc, m=model: self._auto_error(m, exc))
        worker.finished.connect(self._auto_finished)
        self._auto = worker
        worker.start()

    def _auto_error(self, model: Path, exc: BaseException) -> None:
        if model != self.models.path:  # another model was chosen meanwhile: try with it
            self._auto_again = True
            return
        msg = str(exc) if isinstance(exc, SegStudioError) else f"{type(exc).__name__}: {exc}"
        log.warning("automatic prediction with %s failed: %s", model, msg)
        self._auto_failed = model
        self.statusBar().showMessage(f"Automatic prediction stopped: {msg}", 15000)

    def _auto_finished(self) -> None:
        self._auto = None
        if self._auto_again:
            self._auto_again = False
            self._auto_predict()

    def _wait_for_auto(self) -> None:
        """Let a running automatic prediction end (closing: it writes to the project)."""
        self._auto_again = False
        deadline = time.monotonic() + 60
        while self._auto is not None and time.monotonic() < deadline:
            QApplication.processEvents()
            time.sleep(0.005)

    def _image_failed(self, name: str, exc: BaseException) -> None:
        if name != self._loading:
            return
        self._loading = None
        msg = str(exc) if isinstance(exc, SegStudioError) else f"{type(exc).__name__}: {exc}"
        self.statusBar().showMessage(msg, 15000)
        QMessageBox.warning(self, "Open image", msg)
        if self.doc is not None:  # keep the list on the image that is shown
            self.images.select(self.doc.name, emit=False)

    def _show_prediction(self) -> None:
        pred = self.doc.prediction if self.doc is not None else None
        self.canvas.prediction_item.set_values(None if pred is None else pred.labels)
        self.canvas.confidence_item.set_values(None if pred is None else pred.confidence)

    def _labels_changed(self, rect: Any) -> None:
        self.canvas.labels_item.update_rect(rect.y0, rect.x0, rect.y1, rect.x1)

    def _refresh_record(self, name: str) -> None:
        if self.project is not None:
            with contextlib.suppress(SegStudioError):  # the image may have vanished
                self.images.update_record(self.project.record(name))

    # -- layers and palette --------------------------------------------------------------

    def _refresh_tables(self) -> None:
        ls = self._labelset
        if ls is None:
            return
        st = self.layers_panel.state
        palette = ls.palette()
        self.canvas.labels_item.set_table(
            palette_table(palette, st[Layer.LABELS].opacity, self._hidden)
        )
        self.canvas.prediction_item.set_table(
            palette_table(palette, st[Layer.PREDICTION].opacity, self._hidden)
        )
        self.canvas.confidence_item.set_table(heat_table(st[Layer.CONFIDENCE].opacity))

    def _apply_layer(self, layer: Layer) -> None:
        st = self.layers_panel.state[layer]
        item = self.canvas.layers[layer]
        item.setVisible(st.visible)
        if layer is Layer.IMAGE:
            item.setOpacity(st.opacity)
        else:
            self._refresh_tables()
        if layer in (Layer.LABELS, Layer.PREDICTION):
            item.set_outline(st.outline)
        if layer is Layer.LABELS:  # O toggles the labels' outline: keep the action in step
            act = self.action("actionToggleOutline")
            blocked = act.blockSignals(True)
            act.setChecked(st.outline)
            act.blockSignals(blocked)
        toggles = {
            Layer.LABELS: "actionToggleLabels",
            Layer.PREDICTION: "actionTogglePrediction",
            Layer.CONFIDENCE: "actionToggleConfidence",
        }
        if layer in toggles:
            act = self.action(toggles[layer])
            blocked = act.blockSignals(True)
            act.setChecked(st.visible)
            act.blockSignals(blocked)

    def _set_hidden(self, hidden: frozenset[int]) -> None:
        self._hidden = hidden
        self._refresh_tables()

    def edit_labelset(self, new: LabelSet, lut: np.ndarray | None, what: str) -> None:
        """Apply a class edit from the palette; migrate every stored mask when ids move.

        A migration rewrites every mask file, so it runs in a worker while the
        canvas, the image list and the palette wait (the window stays live).
        """
        if self.project is None:
            return
        row = self.palette.current()
        if lut is None:
            self.project.set_labelset(new)
            self.statusBar().showMessage(what, 5000)
            self._labelset_changed(new, row, self.palette.hidden())
            return
        if self.job is not None:
            QMessageBox.information(
                self, "Classes", f"Wait for “{self.job_name}” to finish (or cancel it) first."
            )
            return
        self.canvas.cancel_gesture()
        self._save_doc()
        self.saver.wait()
        self._loading = None  # a load under way would read the old numbering
        self._set_editing_enabled(False)
        self.statusBar().showMessage(f"{what}: migrating masks…")
        project = self.project
        old_version = project.labelset_version
        hidden = frozenset(int(lut[i]) for i in self.palette.hidden()) - {UNLABELED}
        new_row = int(lut[row]) if int(lut[row]) != UNLABELED else max(0, row - 1)

        def done(n: int) -> None:
            doc = self.doc
            if doc is not None and self.project is project and doc.labelset_version == old_version:
                doc.editor.remap(lut)  # the saved masks moved the same way; undo still works
                doc.labelset_version = project.labelset_version
                doc.reload_prediction()
                self._show_prediction()
            self.statusBar().showMessage(f"{what}: {n} mask file(s) migrated", 8000)
            self._labelset_changed(new, new_row, hidden)

        def failed(exc: BaseException) -> None:
            QMessageBox.critical(self, "Classes", f"{what} failed: {exc}")

        worker = create_worker(
            project.migrate_classes, lut, new, _start_thread=False, _ignore_errors=True
        )
        worker.returned.connect(done)
        worker.errored.connect(failed)
        worker.finished.connect(lambda: self._set_editing_enabled(True))
        self._migration = worker
        worker.start()

    def _labelset_changed(self, new: LabelSet, row: int, hidden: frozenset[int]) -> None:
        self._labelset = new
        self._hidden = hidden
        self.palette.set_labelset(new, keep_row=row, hidden=hidden)
        self._refresh_tables()
        self._sync_enabled()

    def _set_editing_enabled(self, on: bool) -> None:
        """Freeze (or thaw) everything that edits or switches images, while masks migrate
        or a dataset is imported; quitting stays possible."""
        for widget in (self.stack, self.images, self.palette):
            widget.setEnabled(on)
        for name, action in self.actions_by_name.items():
            if name != "actionQuit":
                action.setEnabled(on)
        if on:
            self._sync_enabled()

    # -- editing -------------------------------------------------------------------------

    @property
    def lock_unlabeled(self) -> bool:
        return self.action("actionLockUnlabeled").isChecked()

    def _resize_brush(self, factor: float) -> None:
        self.canvas.set_brush_radius(self.canvas.brush_radius * factor)
        self.statusBar().showMessage(f"Brush radius {self.canvas.brush_radius:.1f} px", 2000)

    def _apply(self, placed: Placed | None, value: int | np.ndarray) -> None:
        if self.doc is None or placed is None:
            return
        self.doc.editor.apply(
            placed.y0, placed.x0, placed.mask, value, only_unlabeled=self.lock_unlabeled
        )

    def _stroke_started(self) -> None:
        if self.doc is None:
            return
        self._stroking = True
        self.doc.editor.begin_step(self.canvas.tool.value)

    def _stroke_moved(self, x0: float, y0: float, x1: float, y1: float) -> None:
        if self.doc is None:
            return
        placed = brush_segment(self.doc.labels.shape, (x0, y0), (x1, y1), self.canvas.brush_radius)
        if placed is None:
            return
        tool = self.canvas.tool
        if tool is Tool.ERASER:
            self._apply(placed, UNLABELED)
        elif tool is Tool.ACCEPT:
            pred = self.doc.prediction
            if pred is None:
                return
            h, w = placed.mask.shape
            patch = pred.labels[placed.y0 : placed.y0 + h, placed.x0 : placed.x0 + w]
            self._apply(placed, np.ascontiguousarray(patch))
        else:
            self._apply(placed, self.palette.current())

    def _stroke_finished(self) -> None:
        if self.doc is None or not self._stroking:
            return
        self._stroking = False
        self.doc.editor.end_step()
        self.idle_timer.start()

    def _clicked(self, x: int, y: int) -> None:
        if self.doc is None:
            return
        if self.canvas.tool is Tool.EYEDROPPER:
            value = int(self.doc.labels[y, x])
            if value == UNLABELED and self.doc.prediction is not None:
                value = int(self.doc.prediction.labels[y, x])
            if value != UNLABELED:
                self.palette.choose(value)
            return
        with self.doc.editor.step("Fill"):
            self._apply(flood_region(self.doc.labels, x, y), self.palette.current())
        self.idle_timer.start()

    def _polygon_finished(self, points: list[tuple[float, float]]) -> None:
        if self.doc is None:
            return
        with self.doc.editor.step("Polygon"):
            self._apply(polygon_region(self.doc.labels.shape, points), self.palette.current())
        self.idle_timer.start()

    def _box_finished(self, x0: int, y0: int, x1: int, y1: int) -> None:
        """GrabCut runs in a worker (it can take a second on a big box)."""
        if self.doc is None:
            return
        doc, cls = self.doc, self.palette.current()
        rgb = doc.image.rgb

        version = doc.labelset_version

        def done(placed: Placed | None) -> None:
            if self.doc is not doc or doc.labelset_version != version:
                return  # the user moved on, or the classes were renumbered; drop it
            if placed is None:
                self.statusBar().showMessage("GrabCut found no object in that box", 5000)
                return
            with doc.editor.step("Box → GrabCut"):
                self._apply(placed, cls)
            self.idle_timer.start()

        self.statusBar().showMessage("GrabCut…")
        worker = create_worker(
            grabcut_region, rgb, x0, y0, x1, y1, _start_thread=False, _ignore_errors=True
        )
        worker.returned.connect(done)
        worker.errored.connect(lambda e: self.statusBar().showMessage(f"GrabCut failed: {e}", 8000))
        self._grabcut_worker = worker  # keep a reference while it runs
        worker.start()

    def undo(self) -> None:
        if self.doc is not None and self.doc.editor.undo() is not None:
            self.idle_timer.start()

    def redo(self) -> None:
        if self.doc is not None and self.doc.editor.redo() is not None:
            self.idle_timer.start()

    def accept_prediction(self) -> None:
        """Copy the prediction into every unlabeled pixel: one undo step."""
        doc = self.doc
        if doc is None or doc.prediction is None:
            return
        mask = np.ones(doc.labels.shape, bool)
        with doc.editor.step("Accept prediction"):
            doc.editor.apply(0, 0, mask, doc.prediction.labels, only_unlabeled=True)
        self.idle_timer.start()

    def _show_cursor_info(self, x: int, y: int) -> None:
        doc = self.doc
        ls = self._labelset
        current = ""
        if ls is not None and ls.num_classes:
            current = f"painting: {ls.names[min(self.palette.current(), ls.num_classes - 1)]}"
        if doc is None or x < 0 or ls is None:
            self.pos_label.setText(current)
            return

        def name(v: int) -> str:
            return "unlabeled" if v == UNLABELED or v >= ls.num_classes else ls.names[v]

        parts = [f"x {x}, y {y}", f"label: {name(int(doc.labels[y, x]))}"]
        if doc.prediction is not None:
            conf = doc.prediction.confidence[y, x] / 255
            parts.append(f"predicted: {name(int(doc.prediction.labels[y, x]))} ({conf:.2f})")
        if doc.image.bit_depth > 8:
            parts.append(f"value: {doc.image.raw[y, x]}")
        self.pos_label.setText("   ·   ".join([*parts, current]))

    # -- saving --------------------------------------------------------------------------

    def _save_doc(self) -> None:
        if self.doc is not None:
            if self._stroking:
                self.canvas.cancel_gesture()
            future = self.doc.save()
            if future is not None:
                self._last_save = time.monotonic()
                name = self.doc.name
                future.add_done_callback(lambda _f, n=name: self.labelsSaved.emit(n))

    def autosave(self) -> None:
        """Save if there are unsaved edits and no stroke is in progress; retry failed saves."""
        if self.saver.failed:
            self.saver.retry_failed()
        if self.doc is None or self._stroking or not self.doc.editor.dirty:
            return
        self._save_doc()

    def _save_failed(self, name: str, message: str) -> None:
        self.statusBar().showMessage(
            f"Could not save {name}: {message}. Your labels are kept and saving is retried.",
            15000,
        )

    def _flush_saves(self) -> list[str]:
        """Save the open image, retry failed writes and wait; the images still unsaved."""
        self._save_doc()
        self.saver.retry_failed()
        self.saver.wait()
        return sorted(self.saver.failed)

    def save_now(self) -> bool:
        """Save now and wait; False (after telling the user) when something failed."""
        failed = self._flush_saves()
        if failed:
            QMessageBox.critical(
                self,
                "Save",
                "Saving failed for " + ", ".join(failed) + "; "
                "the labels stay in memory and saving is retried.",
            )
            return False
        self.statusBar().showMessage("Saved", 3000)
        return True

    def toggle_reviewed(self) -> None:
        if self.doc is None or self.project is None:
            return
        if not self.save_now():
            return  # never mark reviewed what is not on disk
        status = self.project.record(self.doc.name).status
        new = ImageStatus.IN_PROGRESS if status is ImageStatus.REVIEWED else ImageStatus.REVIEWED
        self.project.set_status(self.doc.name, new)
        self._refresh_record(self.doc.name)
        self.statusBar().showMessage(f"{self.doc.name}: {new.value.replace('_', ' ')}", 4000)

    def go_least_confident(self) -> None:
        if self.project is None:
            return
        name = self.project.least_confident()
        if name is None:
            self.statusBar().showMessage("No predicted image to review: predict first", 6000)
            return
        self.images.filter.setCurrentIndex(0)
        self.images.select(name)

    # -- model jobs ----------------------------------------------------------------------

    def choose_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Choose a model", "", "SegStudio models (*.safetensors)"
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
            QMessageBox.warning(self, "Choose model", str(exc))
            return False
        self._use_model(path)
        if self.project is not None:
            try:
                self.project.set_active_model(path)
            except SegStudioError as exc:
                QMessageBox.warning(self, "Choose model", f"The choice is not stored: {exc}")
        self.statusBar().showMessage(
            f"Model: {path.name} ({info.arch.name}, {info.labelset.num_classes} classes)", 8000
        )
        return True

    def _use_model(self, path: Path | None, *, missing: str | None = None) -> None:
        """Predict with ``path`` from now on (None: no model; ``missing``: the chosen
        model that has gone, named in the status bar)."""
        self.models.set_model(path)
        self._auto_failed = None
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
        if self.project is None:
            return
        if self.models_dialog is not None:
            self.models_dialog.deleteLater()
        dialog = ModelsDialog(self, self.project, self._labelset)
        dialog.useRequested.connect(self._use_listed_model)
        self.models_dialog = dialog
        dialog.open()  # window-modal, without blocking

    def _use_listed_model(self, summary: ModelSummary) -> None:
        """Make a model of the list active, then offer to re-predict the unreviewed images."""
        if self.project is None:
            return
        if self.job is not None:
            QMessageBox.information(
                self, "Models", f"Wait for “{self.job_name}” to finish (or cancel it) first."
            )
            return
        if not self.set_model(summary.path):
            return
        unreviewed = [r for r in self.project.images() if r.status is not ImageStatus.REVIEWED]
        if not unreviewed:
            return
        answer = QMessageBox.question(
            self,
            "Models",
            f"{summary.name} is the active model now. Re-predict the {len(unreviewed)} "
            "unreviewed image(s) with it? Painted pixels and reviewed images stay as they are.",
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.predict_all()

    def _start_job(
        self,
        name: str,
        func: Callable[..., Any],
        *args: Any,
        on_yield: Callable[[Any], None] | None = None,
        on_return: Callable[[Any], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> bool:
        """Run ``func`` in a worker: one job at a time, with progress and cancel.

        ``cancel`` is the event the job polls (None: Cancel quits the worker at
        its next yield).
        """
        if self.job is not None:
            self.statusBar().showMessage(f"{self.job_name} is still running", 5000)
            return False
        worker = create_worker(func, *args, _start_thread=False, _ignore_errors=True)
        worker.errored.connect(self._job_error)
        worker.finished.connect(self._job_finished)
        if on_yield is not None:
            worker.yielded.connect(on_yield)
        if on_return is not None:
            worker.returned.connect(on_return)
        self.job, self.job_name = worker, name
        self._job_cancel = cancel
        self.progress.setRange(0, 0)
        self.progress.setFormat(f"{name} %v/%m")
        self.progress.setVisible(True)
        self.cancel_button.setVisible(True)
        self._sync_enabled()
        worker.start()
        return True

    def predict_image(self) -> None:
        if self.doc is None or self.project is None:
            return
        if self.project.record(self.doc.name).status is ImageStatus.REVIEWED:
            self.statusBar().showMessage(
                "This image is reviewed: its labels stay as they are", 6000
            )
        self._start_job(
            "Predict",
            predict_one,
            self.models,
            self.project,
            self.doc.name,
            on_return=self._prediction_ready,
        )

    def predict_all(self) -> None:
        if self.project is None:
            return
        names = [r.name for r in self.project.images() if r.status is not ImageStatus.REVIEWED]
        self._start_job(
            "Predict all",
            predict_all,
            self.models,
            self.project,
            names,
            on_yield=self._job_progress,
        )

    def _prediction_ready(self, result: tuple[str, np.ndarray, np.ndarray]) -> None:
        name, labels, confidence = result
        self._refresh_record(name)
        doc = self.doc
        if doc is not None and doc.name == name and labels.shape == doc.labels.shape:
            doc.prediction = PredictionLayer(labels, confidence)  # no re-read on this thread
            self._show_prediction()
            self._sync_enabled()

    def _image_predicted(self, name: str) -> None:
        self._refresh_record(name)
        if self.doc is not None and self.doc.name == name:
            self.doc.reload_prediction()
            self._show_prediction()
            self._sync_enabled()

    def _job_progress(self, p: Progress) -> None:
        self.progress.setRange(0, max(p.total, 1))
        self.progress.setValue(p.done)
        if p.name:
            self._image_predicted(p.name)
        if p.error:
            self.statusBar().showMessage(f"{p.name}: {p.error}", 8000)

    def _job_error(self, exc: BaseException) -> None:
        msg = str(exc) if isinstance(exc, SegStudioError) else f"{type(exc).__name__}: {exc}"
        log.error("%s failed: %s", self.job_name, msg)
        QMessageBox.warning(self, self.job_name or "Model", msg)

    def _job_finished(self) -> None:
        self.statusBar().showMessage(f"{self.job_name} finished", 5000)
        if self.job_name == "Fine-tune":
            self.training_panel.set_running(False)
        self.job, self.job_name = None, ""
        self._job_cancel = None
        self.progress.setVisible(False)
        self.cancel_button.setVisible(False)
        self._sync_enabled()
        # last: a hook may start the next job
        hook, self.job_finished_hook = self.job_finished_hook, None
        if hook is not None:
            hook()

    def cancel_job(self, wait: bool = False) -> None:
        job = self.job
        if job is None:
            return
        if self._job_cancel is not None:
            # the training returns at its next step, closing its generator in its own thread
            self._job_cancel.set()
        else:
            job.quit()
        if wait:  # closing: let the worker reach its next yield and report back
            deadline = time.monotonic() + 30
            while self.job is not None and time.monotonic() < deadline:
                QApplication.processEvents()
                time.sleep(0.01)

    # -- fine-tuning ---------------------------------------------------------------------

    def _validation_images(self) -> list[str]:
        return list(self._val_names)

    def toggle_validation(self) -> None:
        """Hold the open image out of training, for validating new models (or stop)."""
        if self.project is None or self.doc is None:
            return
        names = self._validation_images()
        if self.doc.name in names:
            names.remove(self.doc.name)
            text = f"{self.doc.name} is a training image again"
        else:
            names.append(self.doc.name)
            text = f"{self.doc.name} is held out for validation ({len(names)} in all)"
        self.project.set_setting("validation_images", names)
        self._val_names = names
        self.images.model.set_marked(set(names))
        self.statusBar().showMessage(text, 5000)
        self._sync_enabled()

    def default_fine_tune(self) -> FineTuneChoice:
        """What one click on Fine-tune does: train the active model (or a new one)."""
        return FineTuneChoice(
            config=dict(DEFAULT_FINE_TUNE),
            # the active model; for a project whose classes no model has yet, the
            # bundled model's encoder with a new head (the engine does that)
            start_from_active=self.models.path is not None or bundled_model_path() is not None,
            arch=DEFAULT_NEW_ARCH,
            validation="marked" if self._validation_images() else "auto",
        )

    def fine_tune_with_options(self) -> None:
        if self.project is None:
            return
        if self.models.path is not None:
            start = f"The active model ({self.models.path.name})"
        elif bundled_model_path() is not None:  # its classes differ from the project's
            start = "The bundled model's encoder, with a new head for these classes"
        else:
            start = None
        dialog = FineTuneDialog(self, start_label=start, marked_val=len(self._validation_images()))
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.fine_tune(dialog.choice())

    def _offer_resume(self) -> tuple[FineTuneChoice, Path | None, Path] | None:
        """If a fine-tune was interrupted, ask whether to resume it (else discard it)."""
        assert self.project is not None
        found = interrupted_run(self.project)
        if found is None:
            return None
        run, info, asked = found
        total = info.get("total_steps")
        where = f"step {info.get('step')}" + (f" of {total}" if total else "")
        answer = QMessageBox.question(
            self,
            "Fine-tune",
            f"A fine-tune was interrupted at {where} (saved {info.get('saved_at', '?')}). "
            "Resume it from there?",
        )
        if answer != QMessageBox.StandardButton.Yes:
            discard_run(run)
            return None
        c = asked["choice"]
        choice = FineTuneChoice(
            c["config"], c["start_from_active"], tuple(c["arch"]), c["validation"]
        )
        return choice, Path(asked["active_model"]) if asked["active_model"] else None, run

    def fine_tune(self, choice: FineTuneChoice | None = None) -> None:
        """Train in a worker on a snapshot of the labels; the user keeps painting."""
        if self.project is None:
            return
        if self.job is not None:
            self.statusBar().showMessage(f"{self.job_name} is still running", 5000)
            return
        resume: Path | None = None
        model = self.models.path or bundled_model_path()  # no model yet: the bundled encoder
        resumed = self._offer_resume()
        if resumed is not None:
            choice, model, resume = resumed
        choice = choice or self.default_fine_tune()
        self._save_doc()
        self.saver.wait()  # the snapshot includes the latest strokes
        cancel = threading.Event()
        ls = self.project.labelset_or_default()
        start = (
            f"fine-tuning {model.name}"
            if choice.start_from_active and model
            else f"training a new {choice.arch[0]} model"
        )
        if resume is not None:
            start = f"resuming: {start}"
        started = self._start_job(
            "Fine-tune",
            run_training,
            self.project,
            model,
            choice,
            cancel,
            resume,
            self._job_keep,
            on_yield=self._training_progress,
            on_return=self._training_done,
            cancel=cancel,
        )
        if started:
            self.training_panel.start(ls.names, start)
            self.training_dock.raise_()

    def _training_progress(self, p: Any) -> None:
        self.training_panel.progress(p)
        if p.kind == "step":
            if p.total_steps:
                self.progress.setRange(0, p.total_steps)
                self.progress.setValue(p.step)
            self.progress.setFormat(f"Fine-tune: step {p.step}")

    def _training_done(self, outcome: TrainingOutcome | None) -> None:
        if outcome is None:
            self.training_panel.finish("Cancelled: no model was stored.", can_use=False)
            return
        r = outcome.result
        text = f"The new model: {r.verdict}."  # better, NOT better, or why no verdict
        if r.stopped_early:
            text += f" Stopped early: {r.stopped_early}."
        text += f" Stored as {outcome.path.name}."
        self._trained = outcome.path
        # a new model is never active by itself: the user clicks Use, or has asked
        # for a better one to be used (Model → Use a new model automatically …)
        auto = self.action("actionAutoUseBetter").isChecked() and r.improved is True
        if auto and self.set_model(outcome.path):
            text += " It is the active model now; the unreviewed images are re-predicted."
            self.job_finished_hook = self.predict_all  # once the fine-tune has ended
            self.training_panel.finish(text, can_use=False)
        else:
            text += " The active model stays until you click Use."
            self.training_panel.finish(text, can_use=True)
        self.statusBar().showMessage(text, 15000)

    def use_trained_model(self) -> None:
        """Make the newest trained model active and re-predict what nobody reviewed."""
        if self._trained is None:
            return
        self.set_model(self._trained)
        self.predict_all()

    # -- datasets --------------------------------------------------------------------------

    def _start_cancellable(self, name: str, make: Callable[[], Any], done: Callable) -> None:
        cancel = threading.Event()
        self._start_job(
            name,
            run_cancellable,
            make,
            cancel,
            on_yield=self._dataset_progress,
            on_return=done,
            cancel=cancel,
        )

    def _dataset_progress(self, p: Any) -> None:
        self.progress.setRange(0, max(p.total, 1))
        self.progress.setValue(p.done)

    def export_dataset(self, choice: ExportChoice | None = None) -> None:
        """Export the labelled images in a worker (progress, cancel); DIR is swapped in whole."""
        if self.project is None:
            return
        if choice is None:
            dialog = ExportDialog(
                self, self.project.folder.parent / f"{self.project.folder.name}-dataset"
            )
            if dialog.exec() != QDialog.DialogCode.Accepted:
                return
            choice = dialog.choice()
        from segstudio.io.datasets import ExportOptions, export_dataset

        self._save_doc()
        self.saver.wait()
        project, out = self.project, choice.out
        try:
            options = ExportOptions(**choice.options)
        except SegStudioError as exc:
            QMessageBox.warning(self, "Export", str(exc))
            return
        self._start_cancellable(
            "Export", lambda: export_dataset(project, out, options), self._export_done
        )

    def _export_done(self, report: Any) -> None:
        if report is None:
            self.statusBar().showMessage("Export cancelled: nothing was written", 8000)
            return
        splits = ", ".join(f"{k} {v}" for k, v in report.splits.items())
        text = f"Exported {report.images} image(s) as {report.format} to {report.out} ({splits})."
        if report.skipped:
            shown = "\n".join(report.skipped[:20])
            more = f"\n… and {len(report.skipped) - 20} more" if len(report.skipped) > 20 else ""
            text += f"\n\nNot exported:\n{shown}{more}"
        QMessageBox.information(self, "Export", text)

    def import_dataset(self, choice: ImportChoice | None = None) -> None:
        """Import a dataset's masks as reviewed labels, whole or not at all, in a worker."""
        if self.project is None:
            return
        if choice is None:
            dialog = ImportDialog(self)
            if dialog.exec() != QDialog.DialogCode.Accepted:
                return
            choice = dialog.choice()
        from segstudio.io.datasets import import_dataset

        self.canvas.cancel_gesture()
        self._save_doc()
        self.saver.wait()
        project = self.project
        self._set_editing_enabled(False)  # imported labels must not race with painting
        self.job_finished_hook = lambda: self._set_editing_enabled(True)
        self._start_cancellable(
            "Import",
            lambda: import_dataset(
                project,
                choice.source,
                choice.format,
                palette=choice.palette,
                void=choice.void,
                replace=choice.replace,
            ),
            self._import_done,
        )

    def _import_done(self, report: Any) -> None:
        if report is None or self.project is None:
            self.statusBar().showMessage("Import cancelled: the project is unchanged", 8000)
            return
        self._labelset = self.project.labelset
        self.palette.set_labelset(self._labelset, keep_row=self.palette.current())
        self._refresh_tables()
        records = self.project.images()
        self.images.set_records(records)
        if self.doc is not None:
            self.doc.reload_labels()
            self.canvas.labels_item.set_values(self.doc.labels)
        elif records:
            self.images.select(records[0].name)
        text = f"Imported {report.labels} mask(s) for {report.images} image(s) as reviewed labels."
        if report.warnings:
            text += "\n\n" + "\n".join(report.warnings[:20])
        QMessageBox.information(self, "Import", text)

    # -- help ----------------------------------------------------------------------------

    def show_shortcuts(self) -> None:
        dialog = QDialog(self)
        dialog.setObjectName("shortcutsDialog")
        dialog.setWindowTitle("Keyboard shortcuts")
        table = QTableWidget(len(ACTIONS) + 3, 3, dialog)
        table.setObjectName("shortcutsTable")
        table.setHorizontalHeaderLabels(["Action", "Shortcut", "objectName"])
        rows = [(s.text.replace("&", ""), shortcut_text(s), s.name) for s in ACTIONS]
        rows += [
            ("Pan (hold and drag)", "Space / middle button", "canvas"),
            ("Zoom", "Mouse wheel", "canvas"),
            ("Close polygon / cancel", "Enter, double-click / Esc", "canvas"),
        ]
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                table.setItem(r, c, QTableWidgetItem(text))
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        layout = QVBoxLayout(dialog)
        layout.addWidget(table)
        dialog.resize(640, 720)
        dialog.show()
        self._shortcuts_dialog = dialog

    def show_about(self) -> None:
        QMessageBox.about(
            self,
            "About SegStudio",
            f"SegStudio {__version__}\nPixel-wise labelling with a SegNet model in the loop.",
        )

    # -- closing -------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt API
        if self.job is not None and self.job_name == "Fine-tune":
            answer = QMessageBox.question(
                self,
                "Quit",
                "A fine-tune is running. Quit now? It can resume from its last checkpoint "
                "when you fine-tune next.",
            )
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
            self._job_keep.set()
        self.close_folder()
        deadline = time.monotonic() + 10
        while self._loaders and time.monotonic() < deadline:  # let image loads report back
            QApplication.processEvents()
            time.sleep(0.005)
        self.saver.wait()
        self.saver.shutdown()
        event.accept()
