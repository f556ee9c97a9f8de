"""The Models panel: every model a project can use, with its metrics and lineage.

A dock the user can keep open beside the canvas. It lists the bundled model,
every model in the project's ``.segstudio/models/`` (oldest first, so a
parent comes before what was trained from it) and the active model file when
it lives elsewhere or has gone. The headers are read in a worker, torch-free
and without weights (see :mod:`segstudio.io.project.models`), so the GUI
thread never waits for them.

The active model is marked (●); one click on another model's ○ (or Use, or a
double click) asks the window to make it active. A model whose classes do not
fit the project's is greyed, with the reason, and cannot be chosen. Below the
list, the selected model in full: architecture, classes, date, validation
metrics and lineage (parent, images, recipe).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDockWidget,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QTextBrowser,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from segstudio.core.bundled import bundled_model_path
from segstudio.core.labelset import LabelSet
from segstudio.gui.jobs import WorkerSet, error_text
from segstudio.io.project import Project
from segstudio.io.project.models import ModelKind, ModelSummary, read_summary, teacher_of

#: The columns of the list: the active marker (click to choose), the model.
MARK, MODEL = 0, 1
ACTIVE_MARK, OTHER_MARK = "●", "○"
#: The least height of the model list and the details together (two rows, a few lines).
SPLIT_MIN_HEIGHT = 160
#: A validation on fewer images than this is marked: its mIoU is no ground for comparing.
FEW_IMAGES = 5
#: The colour of a metric measured on few images, in the details.
FEW_COLOUR = "#888888"
#: Recipe fields shown in the lineage, in this order.
RECIPE_KEYS = ("epochs", "minutes", "lr", "batch_size", "crop", "freeze_encoder", "schedule")


@dataclass(frozen=True)
class ModelRows:
    """What the panel lists: the models, and which of them the project has chosen."""

    models: list[ModelSummary]
    active: int | None  # index into ``models``


def gather_models(project: Project, active: Path | None) -> ModelRows:
    """Summarise the bundled model, the project's models and the active one (in a worker).

    Parameters
    ----------
    project : Project
        The open project.
    active : Path or None
        The active model's file, as the window knows it (it may have gone, or
        lie outside the project: then it is listed last, so the user sees it).

    Returns
    -------
    ModelRows
    """
    models: list[ModelSummary] = []
    bundled = bundled_model_path()
    if bundled is not None:
        models.append(read_summary(bundled, ModelKind.BUNDLED))
    models += project.models()
    if active is None:
        return ModelRows(models, None)
    for i, summary in enumerate(models):
        if same_file(summary.path, active):
            return ModelRows(models, i)
    models.append(read_summary(active, ModelKind.FILE))
    return ModelRows(models, len(models) - 1)


def same_file(a: Path | None, b: Path | None) -> bool:
    """Whether two paths name one file (resolved where they exist)."""
    if a is None or b is None:
        return a is b
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return a == b


def display_name(summary: ModelSummary) -> str:
    """How the list names a model: the bundled one says so, files lose their suffix."""
    stem = summary.path.stem
    if summary.kind is ModelKind.BUNDLED:
        return f"{stem} (bundled)"
    if summary.path.name == "live.safetensors":
        return "live (Learn as I paint)"
    return stem


def few_images(summary: ModelSummary) -> str | None:
    """Why the model's mIoU is not comparable (measured on few images); None: it is."""
    images = summary.metrics.get("images")
    if summary.mean_iou is None or not isinstance(images, int) or images >= FEW_IMAGES:
        return None
    return f"measured on {images} image{'' if images == 1 else 's'}: not comparable"


def summary_lines(summary: ModelSummary) -> str:
    """Validation mIoU and classes, then architecture and date: two short lines that fit
    a narrow dock (the details pane has the rest). An mIoU measured on few images says so."""
    if summary.error is not None:
        return "unreadable"
    miou = summary.mean_iou
    first = "no val mIoU" if miou is None else f"mIoU {miou:.3f}"
    images = summary.metrics.get("images")
    if few_images(summary) is not None:
        first += f" ({images} image{'' if images == 1 else 's'})"  # short: a narrow dock
    if summary.labelset is not None:
        first += f" · {summary.labelset.num_classes} classes"
    when = summary.created.astimezone().strftime("%Y-%m-%d %H:%M")
    return f"{first}\n{summary.arch or '?'} · {when}"


def details_html(summary: ModelSummary, active: bool, misfit: str | None) -> str:
    """The selected model in full, as the details pane shows it."""
    s, e = summary, html.escape
    rows: list[tuple[str, str]] = []
    if misfit is not None:
        rows.append(("Cannot be used", f"<span style='color:#c0392b'>{e(misfit)}</span>"))
    rows.append(("Status", "the active model" if active else "not active"))
    few = few_images(s)
    validation = e(_metrics_text(s.metrics))
    if few is not None:  # grey, and why: no ground for comparing with the others
        validation = f"<span style='color:{FEW_COLOUR}'>{validation}: too few to compare</span>"
    rows.append(("Validation", validation))
    rows += _lineage(s)  # where it came from: in sight in a short pane, before the rest
    rows.append(("Architecture", e(s.arch or "—")))
    rows.append(("Created", s.created.astimezone().strftime("%Y-%m-%d %H:%M")))
    if s.labelset is not None:
        rows.append(("Classes", f"{s.labelset.num_classes}: " + e(", ".join(s.labelset.names))))
    rows.append(("File", e(str(s.path))))
    cells = "".join(f"<tr><td valign='top'><b>{k}</b></td><td>{v}</td></tr>" for k, v in rows)
    return f"<b>{e(display_name(s))}</b><table cellspacing='2'>{cells}</table>"


def _metrics_text(metrics: Any) -> str:
    miou = metrics.get("mean_iou")
    if not isinstance(miou, int | float):
        return "no validation metrics stored"
    text = f"mIoU {miou:.3f}"
    acc = metrics.get("pixel_accuracy")
    if isinstance(acc, int | float):
        text += f", pixel accuracy {acc:.3f}"
    images = metrics.get("images")
    if isinstance(images, int):
        text += f", on {images} image(s)"
    return text


def _lineage(s: ModelSummary) -> list[tuple[str, str]]:
    """Parent, how the model came about, the images, the recipe and the run."""
    e, p = html.escape, s.provenance
    rows: list[tuple[str, str]] = []
    parent = s.parent
    if parent is not None:
        info = p.get("parent")
        miou = info.get("mean_iou") if isinstance(info, dict) else None
        bundled = same_file(parent, bundled_model_path())
        text = e(parent.stem + (" (bundled)" if bundled else ""))
        if isinstance(miou, int | float):
            text += f", mIoU {miou:.3f}"
        rows.append(("Parent", text))
    elif p:
        rows.append(("Parent", "none: trained from scratch"))
    teacher = teacher_of(p)
    if teacher is not None:
        text = f"distilled from a {teacher.arch or 'model'}"
        text += "" if teacher.width is None else f" of width {teacher.width:g}"
        if teacher.mean_iou is not None:
            text += f", mIoU {teacher.mean_iou:.3f}"
        rows.append(("Teacher", e(text)))
    how = " · ".join(str(p[k]) for k in ("kind", "head") if p.get(k))
    if how:
        rows.append(("Made by", e(how)))
    train, val = p.get("train_images"), p.get("val_images")
    if isinstance(train, int):
        images = f"trained on {train}" + (f", validated on {val}" if isinstance(val, int) else "")
        source = p.get("source")
        rows.append(("Images", e(images + (f" ({source})" if source else ""))))
    recipe = p.get("recipe")
    if isinstance(recipe, dict):
        shown = [f"{k} {recipe[k]}" for k in RECIPE_KEYS if recipe.get(k) not in (None, False)]
        rows.append(("Recipe", e(", ".join(shown))))
    steps, duration = p.get("steps"), p.get("duration_s")
    if isinstance(steps, int):
        run = f"{steps} steps"
        if isinstance(duration, int | float):
            run += f" in {duration / 60:.1f} min"
        if p.get("device"):
            run += f" on {p['device']}"
        rows.append(("Run", e(run)))
    return rows


def _one_line(text: str) -> str:
    return " ".join(text.splitlines())


def _why_not(summary: ModelSummary, misfit: str) -> str:
    """The lines under a model that cannot be used."""
    return f"unusable:\n{misfit}" if summary.error is not None else f"does not fit:\n{misfit}"


class ModelsPanel(QWidget):
    """The model list of a project; emits :attr:`useRequested` with the model to make active.

    Signals
    -------
    useRequested(ModelSummary)
        The user chose a model (a click on its ○, Use, or a double click).
    """

    useRequested = Signal(object)  # noqa: N815 - Qt naming

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("modelsPanel")
        self.models: list[ModelSummary] = []
        self.active: int | None = None
        self.loaded = False
        self._project: Project | None = None
        self._labelset: LabelSet | None = None
        self._active_path: Path | None = None  # the window's active model file
        self._generation = 0  # a list read for an earlier project or request is dropped
        self.reader = WorkerSet(self)

        self.tree = QTreeWidget()
        self.tree.setObjectName("modelsList")
        self.tree.setColumnCount(2)
        self.tree.setHeaderHidden(True)
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(False)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.tree.header()
        header.setStretchLastSection(True)
        header.setSectionResizeMode(MARK, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.itemSelectionChanged.connect(self._selection_changed)
        self.tree.itemClicked.connect(self._clicked)
        self.tree.itemDoubleClicked.connect(lambda _item, _col: self.use_selected())

        self.details = QTextBrowser()
        self.details.setObjectName("modelDetails")
        self.details.setOpenLinks(False)
        self.status = QLabel("Open a folder to see its models.")
        self.status.setObjectName("modelsStatus")
        self.status.setWordWrap(True)
        self.use = QPushButton("Use")
        self.use.setObjectName("modelsUse")
        self.use.setToolTip("Make the selected model the project's active model")
        self.use.setEnabled(False)
        self.use.clicked.connect(self.use_selected)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setObjectName("modelsRefresh")
        self.refresh_button.setToolTip("Read the project's models folder again")
        self.refresh_button.clicked.connect(self.refresh)

        split = QSplitter(Qt.Orientation.Vertical)
        split.setObjectName("modelsSplit")
        split.addWidget(self.tree)
        split.addWidget(self.details)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        # the list and the details share what the dock has: their preferred heights (the
        # wrapping status line makes the dock ask for them) would push the Use button and
        # the details' lower rows out of a laptop's short dock
        split.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Ignored)
        split.setMinimumHeight(SPLIT_MIN_HEIGHT)
        buttons = QHBoxLayout()
        buttons.addWidget(self.use)
        buttons.addWidget(self.refresh_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.status)
        layout.addWidget(split, 1)
        layout.addLayout(buttons)

    # -- the project -------------------------------------------------------------------

    def set_project(self, project: Project | None, labelset: LabelSet | None) -> None:
        """List ``project``'s models (None: none); ``labelset`` decides which fit."""
        self._project, self._labelset = project, labelset
        self.set_rows(ModelRows([], None), loaded=False)
        if project is None:
            self.status.setText("Open a folder to see its models.")
            return
        self.refresh()

    def refresh(self) -> None:
        """Read the models again, in a worker; the list keeps showing until they arrive."""
        project = self._project
        if project is None:
            return
        self._generation += 1
        self.loaded = False
        self.status.setText("Reading the models…")
        self.reader.start(
            gather_models,
            project,
            self._active_path,
            returned=lambda rows, g=self._generation: self._arrived(g, rows),
            errored=lambda exc, g=self._generation: self._failed(g, exc),
        )

    def wait(self, timeout_s: float) -> bool:
        """Let a list being read arrive (before the project closes)."""
        return self.reader.wait(timeout_s)

    def set_labelset(self, labelset: LabelSet | None) -> None:
        """The project's classes changed: grey (or ungrey) the models again."""
        self._labelset = labelset
        self.set_rows(ModelRows(self.models, self.active), loaded=self.loaded)

    def set_active(self, path: Path | None) -> None:
        """Mark the model file ``path`` active (the window switched to it; it may have gone)."""
        self._active_path = path
        active = self.row_of(path) if path is not None else None
        if self.loaded and (path is None or active is not None):
            self.set_rows(ModelRows(self.models, active))
        else:  # a file the list does not hold yet, or a list read for the one before
            self.refresh()

    def reveal(self) -> None:
        """Show the panel's dock and bring it to the front (Model → Models…)."""
        dock = self.parentWidget()
        while dock is not None and not isinstance(dock, QDockWidget):
            dock = dock.parentWidget()
        if dock is not None:
            dock.show()
            dock.raise_()
        self.refresh()

    def _arrived(self, generation: int, rows: ModelRows) -> None:
        if generation == self._generation:
            self.set_rows(rows)

    def _failed(self, generation: int, exc: BaseException) -> None:
        if generation == self._generation:
            self.loaded = True
            self.status.setText(f"Could not list the models: {error_text(exc)}")

    # -- filling -------------------------------------------------------------------------

    def misfit(self, summary: ModelSummary) -> str | None:
        """Why ``summary`` cannot be used in this project; None when it can."""
        return summary.misfit(self._labelset)

    def set_rows(self, rows: ModelRows, *, loaded: bool = True) -> None:
        """Show ``rows`` (what :func:`gather_models` found); the selection is kept."""
        keep = self.selected()
        self.models, self.active, self.loaded = rows.models, rows.active, loaded
        self.tree.blockSignals(True)
        self.tree.clear()
        grey = self.palette().color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
        for r, summary in enumerate(rows.models):
            misfit = self.misfit(summary)
            active = r == rows.active
            second = summary_lines(summary) if misfit is None else _why_not(summary, misfit)
            item = QTreeWidgetItem(
                [ACTIVE_MARK if active else OTHER_MARK, f"{display_name(summary)}\n{second}"]
            )
            item.setData(MODEL, Qt.ItemDataRole.UserRole, str(summary.path))
            tip = f"{summary.path}\n{_one_line(second)}"
            few = few_images(summary) if misfit is None else None
            if few is not None:
                tip += f"\nmIoU {few} with models validated on more images"
            item.setToolTip(MODEL, tip)
            item.setToolTip(
                MARK,
                "the active model"
                if active
                else (f"cannot be used: {misfit}" if misfit else "click to make this model active"),
            )
            font = QFont(item.font(MODEL))
            font.setBold(active)
            item.setFont(MODEL, font)
            if misfit is not None:
                item.setForeground(MARK, grey)
                item.setForeground(MODEL, grey)
            self.tree.addTopLevelItem(item)
        self.tree.blockSignals(False)
        pick = keep.path if keep is not None else None
        if not self.select(pick) and rows.active is not None:
            self.tree.setCurrentItem(self.tree.topLevelItem(rows.active))
        self._say()
        self._selection_changed()

    def _say(self) -> None:
        if not self.loaded:
            return
        if not self.models:
            self.status.setText("No models yet: fine-tune (Ctrl+T) makes the project's first.")
        elif self.active is None:
            self.status.setText("No model is active: click ○ beside one to use it.")
        else:
            summary = self.models[self.active]
            misfit = self.misfit(summary)
            name = display_name(summary)
            self.status.setText(
                f"Active: {name}."
                if misfit is None
                else f"The active model {name}: {_one_line(_why_not(summary, misfit))}."
            )

    # -- choosing ------------------------------------------------------------------------

    def selected(self) -> ModelSummary | None:
        """The selected model, or None."""
        item = self.tree.currentItem()
        if item is None or not item.isSelected():
            return None
        r = self.tree.indexOfTopLevelItem(item)
        return self.models[r] if 0 <= r < len(self.models) else None

    def row_of(self, path: Path | None) -> int | None:
        """The row of the model file ``path``, or None when it is not listed."""
        return next((r for r, s in enumerate(self.models) if same_file(s.path, path)), None)

    def select(self, path: Path | None) -> bool:
        """Select the model file ``path``; False when it is not listed."""
        row = self.row_of(path)
        if row is None:
            return False
        self.tree.setCurrentItem(self.tree.topLevelItem(row))
        return True

    def use_selected(self) -> None:
        """Ask for the selected model to become active (when it fits and is not already)."""
        summary = self.selected()
        if summary is None or self.misfit(summary) is not None:
            return
        if self.active is not None and summary is self.models[self.active]:
            return
        self.useRequested.emit(summary)

    def _clicked(self, item: QTreeWidgetItem, column: int) -> None:
        if column == MARK:  # the ○: one click makes that model active
            self.tree.setCurrentItem(item)
            self.use_selected()

    def _selection_changed(self) -> None:
        summary = self.selected()
        if summary is None:
            self.use.setEnabled(False)
            self.details.setHtml("")
            return
        misfit = self.misfit(summary)
        active = self.active is not None and summary is self.models[self.active]
        self.use.setEnabled(misfit is None and not active)
        self.details.setHtml(details_html(summary, active, misfit))
