"""Model → Models…: every model a project can use, with its metrics and lineage.

The list holds the bundled model, every model in the project's
``.segstudio/models/`` (oldest first, so a parent comes before what was
trained from it) and the chosen model file when it lives elsewhere or has
gone. The headers are read in a worker, torch-free and without weights (see
:mod:`segstudio.io.project.models`), so the dialog opens at once. Models whose
classes do not fit the project are greyed, with the reason, and cannot be
used; **Use** asks the window to make the selected model the active one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtGui import QFont, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import create_worker

from segstudio.core.bundled import bundled_model_path
from segstudio.core.labelset import LabelSet
from segstudio.io.project import Project
from segstudio.io.project.models import ModelKind, ModelSummary, read_summary

COLUMNS = ("Active", "Model", "Architecture", "Classes", "Created", "Val mIoU", "Parent", "Note")


@dataclass(frozen=True)
class ModelRows:
    """What the dialog lists: the models, and which of them the project has chosen."""

    models: list[ModelSummary]
    active: int | None  # index into ``models``


def gather_models(project: Project) -> ModelRows:
    """Summarise the bundled model, the project's models and the chosen one (run in a worker).

    Parameters
    ----------
    project : Project
        The open project.

    Returns
    -------
    ModelRows
    """
    models: list[ModelSummary] = []
    bundled = bundled_model_path()
    if bundled is not None:
        models.append(read_summary(bundled, ModelKind.BUNDLED))
    models += project.models()
    choice = project.model_choice()
    chosen = None if choice is None else choice.expected_path(project.models_dir)
    if chosen is None:
        return ModelRows(models, None)
    for i, summary in enumerate(models):
        if _same_file(summary.path, chosen):
            return ModelRows(models, i)
    assert choice is not None
    # an outside file, or one that has gone: listed so the user sees what is chosen
    models.append(read_summary(chosen, choice.kind))
    return ModelRows(models, len(models) - 1)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return a == b


class ModelsDialog(QDialog):
    """The model list of a project; emits :attr:`useRequested` with the model to make active."""

    useRequested = Signal(object)  # noqa: N815 - Qt naming; the chosen ModelSummary

    def __init__(self, parent: QWidget | None, project: Project, labelset: LabelSet | None) -> None:
        """List ``project``'s models; ``labelset`` (the project's classes) decides which fit."""
        super().__init__(parent)
        self.setObjectName("modelsDialog")
        self.setWindowTitle("Models")
        self._labelset = labelset
        self.models: list[ModelSummary] = []
        self.active: int | None = None
        self.loaded = False

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("modelsTable")
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.table.itemDoubleClicked.connect(lambda _item: self.use_selected())

        self.status = QLabel("Reading the models…")
        self.status.setObjectName("modelsStatus")
        self.status.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.use = QPushButton("Use")
        self.use.setObjectName("modelsUse")
        self.use.setToolTip("Make the selected model the project's active model")
        self.use.setEnabled(False)
        self.use.clicked.connect(self.use_selected)
        buttons.addButton(self.use, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(self.status)
        layout.addWidget(buttons)
        self.resize(1240, 380)  # fits a 1366-wide screen with the notes readable

        self._worker = create_worker(
            gather_models, project, _start_thread=False, _ignore_errors=True
        )
        self._worker.returned.connect(self.set_rows)
        self._worker.errored.connect(self._failed)
        self._worker.start()

    # -- filling -------------------------------------------------------------------------

    def set_rows(self, rows: ModelRows) -> None:
        """Show ``rows`` (what :func:`gather_models` found); the active model is selected."""
        self.models, self.active = rows.models, rows.active
        self.table.setRowCount(len(rows.models))
        grey = self.palette().color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
        bundled = bundled_model_path()
        for r, summary in enumerate(rows.models):
            misfit = summary.misfit(self._labelset)
            cells = _cells(summary, r == rows.active, misfit, bundled)
            for c, (text, tip) in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(tip)
                if misfit is not None:
                    item.setForeground(grey)
                if r == rows.active:
                    font = QFont(item.font())
                    font.setBold(True)
                    item.setFont(font)
                self.table.setItem(r, c, item)
        self.loaded = True
        if not rows.models:
            self.status.setText("No models yet: fine-tune (Ctrl+T) makes the project's first.")
        elif rows.active is None:
            self.status.setText("No model is active: select one and click Use.")
        else:
            self.status.setText(f"Active: {rows.models[rows.active].name}.")
        if rows.active is not None:
            self.table.selectRow(rows.active)
        self._selection_changed()

    def _failed(self, exc: BaseException) -> None:
        self.loaded = True
        self.status.setText(f"Could not list the models: {exc}")

    # -- choosing ------------------------------------------------------------------------

    def selected(self) -> ModelSummary | None:
        """The selected model, or None."""
        rows = self.table.selectionModel().selectedRows()
        return self.models[rows[0].row()] if rows else None

    def select(self, path: Path) -> bool:
        """Select the model file ``path``; False when it is not listed."""
        for r, summary in enumerate(self.models):
            if _same_file(summary.path, path):
                self.table.selectRow(r)
                return True
        return False

    def use_selected(self) -> None:
        """Ask for the selected model to become active, and close."""
        summary = self.selected()
        if summary is None or summary.misfit(self._labelset) is not None:
            return
        self.useRequested.emit(summary)
        self.accept()

    def _selection_changed(self) -> None:
        summary = self.selected()
        if summary is None:
            self.use.setEnabled(False)
            return
        misfit = summary.misfit(self._labelset)
        self.use.setEnabled(misfit is None)
        if misfit is not None:
            self.status.setText(f"{summary.name} cannot be used here: {misfit}.")
        elif self.active is not None and summary is self.models[self.active]:
            self.status.setText(f"{summary.name} is the active model.")
        else:
            self.status.setText(f"Use makes {summary.name} the active model.")


def _cells(
    summary: ModelSummary, active: bool, misfit: str | None, bundled: Path | None
) -> list[tuple[str, str]]:
    """The (text, tooltip) of each column of one model's row."""
    s = summary
    name = f"{s.name} (bundled)" if s.kind is ModelKind.BUNDLED else s.name
    classes = ("", "")
    if s.labelset is not None:
        classes = (str(s.labelset.num_classes), ", ".join(s.labelset.names))
    created = s.created.astimezone().strftime("%Y-%m-%d %H:%M")
    miou = ("—", "no validation metrics stored")
    if s.mean_iou is not None:
        miou = (f"{s.mean_iou:.3f}", f"on {s.metrics.get('images', '?')} validation image(s)")
    return [
        ("●" if active else "", "the project's active model" if active else ""),
        (name, str(s.path)),
        (s.arch or "—", ""),
        classes,
        (created, s.created.isoformat(timespec="seconds")),
        miou,
        _parent(s, bundled),
        (misfit or "", misfit or ""),
    ]


def _parent(summary: ModelSummary, bundled: Path | None) -> tuple[str, str]:
    """The lineage column: which model this one was trained from."""
    parent = summary.parent
    how = str(summary.provenance.get("head") or summary.provenance.get("kind") or "")
    if parent is None:
        return ("—", how)
    text = parent.name
    if bundled is not None and _same_file(parent, bundled):
        text = f"{parent.name} (bundled)"
    parent_info = summary.provenance.get("parent")
    miou = parent_info.get("mean_iou") if isinstance(parent_info, dict) else None
    tip = str(parent) + (f"\nits validation mIoU: {miou:.3f}" if isinstance(miou, float) else "")
    return (text, tip + (f"\n{how}" if how else ""))
