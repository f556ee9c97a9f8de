"""Every action of the window, with a stable objectName and a shortcut.

The table is data so that the menus, the tool palette, the Help page, tests
and scripts all read the same list. A script finds an action with
``window.findChild(QAction, "actionPredictAll")``.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu

from segstudio.gui.canvas import Tool


@dataclass(frozen=True)
class ActionSpec:
    name: str  # objectName
    text: str
    shortcuts: tuple[str, ...]
    menu: str
    tip: str = ""
    checkable: bool = False


def _spec(
    name: str, text: str, keys: str | tuple[str, ...], menu: str, tip: str = "", checkable=False
) -> ActionSpec:
    return ActionSpec(name, text, (keys,) if isinstance(keys, str) else keys, menu, tip, checkable)


ACTIONS: tuple[ActionSpec, ...] = (
    _spec("actionOpenFolder", "&Open Folder…", "Ctrl+O", "&File", "Open a folder of images"),
    _spec("actionSave", "&Save", "Ctrl+S", "&File", "Save the labels now"),
    _spec(
        "actionExportDataset",
        "&Export dataset…",
        "Ctrl+E",
        "&File",
        "Write the labelled images as an index-PNG, CamVid, VOC, Cityscapes or COCO dataset",
    ),
    _spec(
        "actionImportDataset",
        "&Import dataset…",
        "Ctrl+Shift+I",
        "&File",
        "Bring in masks from a dataset folder, as reviewed labels",
    ),
    _spec("actionCloseFolder", "&Close Folder", "Ctrl+W", "&File"),
    _spec("actionQuit", "&Quit", "Ctrl+Q", "&File"),
    _spec("actionUndo", "&Undo", "Ctrl+Z", "&Edit"),
    _spec("actionRedo", "&Redo", ("Ctrl+Shift+Z", "Ctrl+Y"), "&Edit"),
    _spec(
        "actionAcceptPrediction",
        "Accept prediction into unlabeled pixels",
        "Shift+A",
        "&Edit",
        "Copy the model's prediction into every pixel nobody has labelled",
    ),
    _spec(
        "actionLockUnlabeled",
        "Paint only unlabeled pixels",
        "L",
        "&Edit",
        "Lock painted pixels: tools change only unlabeled ones",
        True,
    ),
    _spec("actionToolBrush", "&Brush", "B", "&Tools", "Paint the current class", True),
    _spec("actionToolEraser", "&Eraser", "E", "&Tools", "Erase to unlabeled", True),
    _spec("actionToolFill", "&Fill", "F", "&Tools", "Flood-fill a region", True),
    _spec(
        "actionToolPolygon",
        "&Polygon",
        "P",
        "&Tools",
        "Click corners; double-click, Enter or right-click closes",
        True,
    ),
    _spec(
        "actionToolGrabCut",
        "Box → &GrabCut",
        "G",
        "&Tools",
        "Drag a box around an object: GrabCut finds its mask",
        True,
    ),
    _spec(
        "actionToolEyedropper",
        "Eye&dropper",
        "I",
        "&Tools",
        "Pick the class under the cursor",
        True,
    ),
    _spec(
        "actionToolAccept",
        "&Accept-prediction brush",
        "A",
        "&Tools",
        "Paint the model's prediction where you brush",
        True,
    ),
    _spec("actionToolPan", "Pa&n", "M", "&Tools", "Drag to pan (or hold Space)", True),
    _spec("actionBrushBigger", "Bigger brush", "]", "&Tools"),
    _spec("actionBrushSmaller", "Smaller brush", "[", "&Tools"),
    *(
        _spec(f"actionClass{i}", f"Class {i}", str(i), "&Tools", f"Pick class {i} of the palette")
        for i in range(1, 10)
    ),
    _spec("actionFit", "&Fit to window", "Ctrl+0", "&View"),
    _spec("actionZoom100", "Actual size (1:1)", "Ctrl+1", "&View"),
    _spec("actionZoomIn", "Zoom &in", ("Ctrl+=", "Ctrl++"), "&View"),
    _spec("actionZoomOut", "Zoom &out", "Ctrl+-", "&View"),
    _spec("actionToggleLabels", "Show labels", "H", "&View", checkable=True),
    _spec("actionTogglePrediction", "Show prediction", "J", "&View", checkable=True),
    _spec("actionToggleConfidence", "Show confidence", "C", "&View", checkable=True),
    _spec("actionToggleOutline", "Outline view of labels", "O", "&View", checkable=True),
    _spec(
        "actionToggleOverview",
        "Show &overview",
        "Ctrl+Shift+O",
        "&View",
        "A small map of the whole image in the canvas's corner when zoomed in: "
        "click or drag it to move the view",
        True,
    ),
    _spec(
        "actionTogglePanels",
        "Hide &panels (canvas only)",
        "Ctrl+Shift+F",
        "&View",
        "Hide the side panels to give the canvas the whole window; again to bring them back",
        True,
    ),
    _spec("actionNextImage", "&Next image", ("PgDown", "."), "&Image"),
    _spec("actionPrevImage", "&Previous image", ("PgUp", ","), "&Image"),
    _spec(
        "actionMarkReviewed",
        "Mark &reviewed",
        "R",
        "&Image",
        "Mark this image reviewed (again: back to in progress)",
    ),
    _spec("actionLeastConfident", "Go to &least confident image", "Ctrl+L", "&Image"),
    _spec(
        "actionModels",
        "&Models…",
        "Ctrl+Shift+M",
        "&Model",
        "Every model of this project, with its metrics and lineage: choose the active one",
    ),
    _spec("actionChooseModel", "&Choose model file…", "Ctrl+M", "&Model"),
    _spec("actionPredictImage", "&Predict this image", "Ctrl+P", "&Model"),
    _spec("actionPredictAll", "Predict &all unreviewed", "Ctrl+Shift+P", "&Model"),
    _spec(
        "actionAutoPredict",
        "Predict each &new image when shown",
        "Ctrl+Alt+P",
        "&Model",
        "An image without a prediction is predicted (in the background) when you open it",
        True,
    ),
    _spec(
        "actionFineTune",
        "&Fine-tune",
        "Ctrl+T",
        "&Model",
        "Train the model on your corrections, in the background, with the usual recipe",
    ),
    _spec("actionFineTuneDialog", "Fine-tune &with options…", "Ctrl+Shift+T", "&Model"),
    _spec(
        "actionLearnAsIPaint",
        "&Learn as I paint",
        "Ctrl+Alt+L",
        "&Model",
        "Retrain a small head over the SegNet's features after every edit (seconds) and "
        "re-predict this image and the unreviewed ones; on by default for classes no model knows",
        True,
    ),
    _spec(
        "actionAutoUseBetter",
        "Use a new model automatically when it is &better on validation",
        "Ctrl+Alt+U",
        "&Model",
        "Off: a fine-tuned model becomes active only when you click Use",
        True,
    ),
    _spec(
        "actionToggleValidation",
        "Use this image for &validation",
        "V",
        "&Image",
        "Mark (or unmark) this image as held out for validating fine-tuned models",
        True,
    ),
    _spec("actionCancelJob", "&Cancel running job", "Ctrl+.", "&Model"),
    _spec(
        "actionShortcuts",
        "&Workflow and keys",
        "F1",
        "&Help",
        "How to go from a folder of images to a dataset, and every key",
    ),
    _spec("actionAbout", "&About SegStudio", "Shift+F1", "&Help"),
    # -- class keys (part b): 1-9 above; 0 for the tenth class, then a picker for every class
    _spec("actionClass10", "Class 10", "0", "&Tools", "Pick class 10 of the palette"),
    _spec(
        "actionClassPicker",
        "Pick a class by &name…",
        ("Ctrl+K", "`"),
        "&Tools",
        "Type to find any class, Enter to choose it",
    ),
)

MENUS = ("&File", "&Edit", "&Tools", "&View", "&Image", "&Model", "&Help")


def shortcut_text(spec: ActionSpec) -> str:
    native = QKeySequence.SequenceFormat.NativeText
    return ", ".join(QKeySequence(k).toString(native) for k in spec.shortcuts)


#: The tool actions (one of them is checked) and the canvas tool each picks.
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


#: The shipped icon (``resources/icons/<name>.svg``) of each action that has one.
ICONS = {
    "actionOpenFolder": "open",
    "actionSave": "save",
    "actionUndo": "undo",
    "actionRedo": "redo",
    "actionAcceptPrediction": "accept_all",
    "actionLockUnlabeled": "lock",
    "actionToolBrush": "brush",
    "actionToolEraser": "eraser",
    "actionToolFill": "fill",
    "actionToolPolygon": "polygon",
    "actionToolGrabCut": "grabcut",
    "actionToolEyedropper": "eyedropper",
    "actionToolAccept": "accept_brush",
    "actionToolPan": "pan",
    "actionFit": "fit",
    "actionZoomIn": "zoom_in",
    "actionZoomOut": "zoom_out",
    "actionToggleOverview": "overview",
    "actionTogglePanels": "panels",
    "actionMarkReviewed": "reviewed",
    "actionPredictImage": "predict",
    "actionPredictAll": "predict_all",
    "actionFineTune": "fine_tune",
    "actionShortcuts": "help",
}


def tooltip(spec: ActionSpec) -> str:
    """The action's name and keys ("Brush (B)") and, on a second line, what it does."""
    head = f"{spec.text.replace('&', '')} ({shortcut_text(spec)})"
    return f"{head}\n{spec.tip}" if spec.tip else head


def install_actions(window: QMainWindow) -> tuple[dict[str, QAction], dict[str, QMenu]]:
    """Create every action of :data:`ACTIONS` on ``window``, in its menu; returns the
    actions by name and the menus by title (``"recent"``: File → Open Recent).

    The actions are added to the window too, so their shortcuts work with the
    menus hidden. The tool actions form one exclusive group; the tool palette
    (:mod:`~segstudio.gui.tool_palette`) shows them with their icons.
    """
    menus = {title: window.menuBar().addMenu(title) for title in MENUS}
    tools = QActionGroup(window)
    actions: dict[str, QAction] = {}
    for spec in ACTIONS:
        action = QAction(spec.text, window)
        action.setObjectName(spec.name)
        action.setShortcuts([QKeySequence(k) for k in spec.shortcuts])
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.setToolTip(tooltip(spec))
        action.setStatusTip(spec.tip)
        action.setCheckable(spec.checkable)
        if spec.name in TOOL_ACTIONS:
            tools.addAction(action)
        menus[spec.menu].addAction(action)
        if spec.name == "actionCloseFolder":
            menus["recent"] = menus[spec.menu].addMenu("Open &Recent")
        window.addAction(action)
        actions[spec.name] = action
    actions["actionToolBrush"].setChecked(True)
    for name in (
        "actionToggleLabels",
        "actionTogglePrediction",
        "actionAutoPredict",
        "actionToggleOverview",
    ):
        actions[name].setChecked(True)
    return actions, menus
