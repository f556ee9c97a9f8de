"""Help → Workflow and keys (F1): the path from a folder of images to a dataset, and every key.

Both halves are built from the action table (:data:`~segstudio.gui.actions.ACTIONS`),
so a key shown here is the key that works. The dialog is not modal: it can
stay open beside the canvas while the user learns the keys.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QHeaderView,
    QLineEdit,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from segstudio.gui.actions import ACTIONS, MENUS, ActionSpec, shortcut_text

#: Keys that are not actions: the canvas's own mouse and key handling.
CANVAS_KEYS = (
    ("Pan", "Hold Space and drag, or drag with the middle button"),
    ("Zoom", "Mouse wheel (around the cursor)"),
    ("Close a polygon", "Enter, double-click or right-click"),
    ("Cancel a polygon or box", "Esc"),
    ("Move the view", "Click or drag in the overview (bottom right)"),
)
#: Name of the category of the canvas keys.
CANVAS = "Mouse and canvas"


def _keys(name: str) -> str:
    """The keys of action ``name`` as HTML key caps (empty when there is no such action)."""
    spec = next((s for s in ACTIONS if s.name == name), None)
    if spec is None:
        return ""
    native = QKeySequence.SequenceFormat.NativeText
    caps = (QKeySequence(k).toString(native) for k in spec.shortcuts)
    return " or ".join(f"<b>{html.escape(c)}</b>" for c in caps)


def workflow_html() -> str:
    """The six steps of the labelling loop, each with its menu and keys."""
    k = _keys
    tools = ", ".join(
        f"{label} {k(name)}"
        for label, name in (
            ("brush", "actionToolBrush"),
            ("eraser", "actionToolEraser"),
            ("fill", "actionToolFill"),
            ("polygon", "actionToolPolygon"),
            ("box → GrabCut", "actionToolGrabCut"),
            ("accept-prediction brush", "actionToolAccept"),
            ("eyedropper", "actionToolEyedropper"),
        )
    )
    class_keys = f"{k('actionClass1')}…{k('actionClass9')}"
    if k("actionClass10"):
        class_keys += f", {k('actionClass10')} for the tenth"
    if k("actionClassPicker"):
        class_keys += f", any class by name {k('actionClassPicker')}"
    steps = (
        (
            "Open a folder of images",
            f"File → Open Folder {k('actionOpenFolder')}. A new project asks which classes "
            "you label: a preset (road scenes, VOC, …) or your own.",
        ),
        (
            "Predict",
            "The active model predicts each image when you open it (the Prediction "
            f"layer, under your labels). Predict this image {k('actionPredictImage')}, "
            f"every unreviewed one {k('actionPredictAll')}. No model knows your classes? "
            f"Learn as I paint {k('actionLearnAsIPaint')} learns from your strokes.",
        ),
        (
            "Correct",
            f"Pick a class with {class_keys} or in the Classes "
            f"panel, then a tool: {tools}. Accept the whole prediction into unlabelled pixels "
            f"{k('actionAcceptPrediction')}. Brush size {k('actionBrushSmaller')} "
            f"{k('actionBrushBigger')}; paint only unlabelled pixels {k('actionLockUnlabeled')};"
            f" undo {k('actionUndo')}.",
        ),
        (
            "Review",
            f"Mark the image reviewed {k('actionMarkReviewed')} and go on "
            f"{k('actionNextImage')}; the least confident image next {k('actionLeastConfident')}.",
        ),
        (
            "Fine-tune",
            f"Fine-tune {k('actionFineTune')} trains on your reviewed images in the background "
            f"while you keep labelling; Models… {k('actionModels')} lists every model with its "
            "validation scores and makes one active.",
        ),
        (
            "Export",
            f"File → Export dataset {k('actionExportDataset')} writes index PNGs, CamVid, VOC, "
            "Cityscapes or COCO, with the class table.",
        ),
    )
    items = "".join(f"<li><p><b>{html.escape(title)}.</b> {text}</p></li>" for title, text in steps)
    return (
        "<h3>From a folder of images to a labelled dataset</h3>"
        f"<ol>{items}</ol>"
        "<p>Tool and view keys work when the pointer is over the canvas or a panel; "
        "the full list is below.</p>"
    )


def key_rows() -> list[tuple[str, list[tuple[str, str, str]]]]:
    """Every key by category (the menus, then the canvas's own): ``(category, rows)``, each
    row ``(what it does, keys, objectName or "")``."""
    by_menu: dict[str, list[ActionSpec]] = {m: [] for m in MENUS}
    for spec in ACTIONS:
        by_menu.setdefault(spec.menu, []).append(spec)
    groups = [
        (
            menu.replace("&", ""),
            [(s.text.replace("&", "").rstrip("…"), shortcut_text(s), s.name) for s in specs],
        )
        for menu, specs in by_menu.items()
        if specs
    ]
    groups.append((CANVAS, [(what, keys, "") for what, keys in CANVAS_KEYS]))
    return groups


class HelpDialog(QDialog):
    """The workflow on top, a searchable table of keys by category below."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("helpDialog")
        self.setWindowTitle("SegStudio: workflow and keys")
        self.setModal(False)
        self.workflow = QTextBrowser()
        self.workflow.setObjectName("helpWorkflow")
        self.workflow.setOpenExternalLinks(False)
        self.workflow.setHtml(workflow_html())
        self.search = QLineEdit()
        self.search.setObjectName("helpSearch")
        self.search.setPlaceholderText("Find a key or an action…")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self.filter)
        self.table = QTableWidget(0, 2)
        self.table.setObjectName("shortcutsTable")
        self.table.setHorizontalHeaderLabels(["Action", "Keys"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self._fill()
        keys = QWidget()
        keys_layout = QVBoxLayout(keys)
        keys_layout.setContentsMargins(0, 0, 0, 0)
        keys_layout.addWidget(self.search)
        keys_layout.addWidget(self.table)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.workflow)
        split.addWidget(keys)
        split.setSizes([300, 420])
        layout = QVBoxLayout(self)
        layout.addWidget(split)
        self.resize(680, 720)

    def _fill(self) -> None:
        bold = QFont(self.font())
        bold.setBold(True)
        for category, rows in key_rows():
            r = self.table.rowCount()
            self.table.insertRow(r)
            head = QTableWidgetItem(category)
            head.setFont(bold)
            head.setFlags(Qt.ItemFlag.ItemIsEnabled)
            head.setData(Qt.ItemDataRole.UserRole, "")
            self.table.setItem(r, 0, head)
            self.table.setSpan(r, 0, 1, 2)
            for what, keys, name in rows:
                r = self.table.rowCount()
                self.table.insertRow(r)
                item = QTableWidgetItem(what)
                item.setData(Qt.ItemDataRole.UserRole, name)  # for scripts; not shown
                self.table.setItem(r, 0, item)
                self.table.setItem(r, 1, QTableWidgetItem(keys))

    def action_names(self) -> set[str]:
        """The objectNames of the actions listed (scripts and tests read them)."""
        names = set()
        for r in range(self.table.rowCount()):
            item = self.table.item(r, 0)
            name = item.data(Qt.ItemDataRole.UserRole) if item is not None else ""
            if name:
                names.add(name)
        return names

    def filter(self, text: str) -> None:
        """Show the rows whose action or keys contain ``text`` (and their category)."""
        needle = text.strip().casefold()
        head_row, head_shown = -1, False
        for r in range(self.table.rowCount()):
            if self.table.columnSpan(r, 0) == 2:  # a category: shown when a row under it is
                if head_row >= 0:
                    self.table.setRowHidden(head_row, not head_shown)
                head_row, head_shown = r, False
                continue
            cells = (self.table.item(r, c) for c in (0, 1))
            hit = not needle or any(c is not None and needle in c.text().casefold() for c in cells)
            self.table.setRowHidden(r, not hit)
            head_shown = head_shown or hit
        if head_row >= 0:
            self.table.setRowHidden(head_row, not head_shown)
