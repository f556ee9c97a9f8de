"""A new project's first question: which classes will you label?

A folder opened for the first time (no ``.segstudio`` yet) shows this page in
the window, not a modal dialog: a preset (road scenes, VOC, Cityscapes), a
classes file found beside the images, or "Empty — I'll add my own classes"
(with names typed at once, or a placeholder to rename). A cells, horse or
aerial project thus never starts with road classes and the road model: the
bundled model becomes active only for classes it predicts. Scripts and tests
that call :meth:`MainWindow.open_folder` directly skip the question.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QButtonGroup,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from segstudio.core.bundled import bundled_model_path
from segstudio.core.errors import SegStudioError
from segstudio.core.labelset import (
    PRESETS,
    LabelClass,
    LabelSet,
    distinct_color,
    read_classes_file,
)
from segstudio.io.images import IMAGE_SUFFIXES
from segstudio.io.project import STATE_DIR_NAME
from segstudio.io.project.models import ModelKind, ModelSummary, read_summary

#: How each preset is offered.
PRESET_TITLES = {
    "camvid11": "Road scenes: CamVid, 11 classes",
    "camvid32": "Road scenes: CamVid, full 32-class palette",
    "voc": "Objects: Pascal VOC, 21 classes",
    "cityscapes": "Street scenes: Cityscapes, 19 classes",
}
#: The class a project with no names typed starts with (a label set has at least one).
PLACEHOLDER = "object"
#: The width of the descriptions under the choices (the card is a little wider).
NOTE_WIDTH = 540
#: Where a classes file beside the images is looked for.
CLASS_FILES = ("classes.json", "class_dict.csv", "labelmap.txt")


def is_new_project(folder: Path) -> bool:
    """Whether opening ``folder`` creates a project (it has no project state yet)."""
    return not (folder / STATE_DIR_NAME).exists()


def custom_labelset(names: Iterable[str], name: str = "custom") -> LabelSet:
    """A label set of ``names`` (duplicates ignoring case dropped), each with a colour far
    from the others; :data:`PLACEHOLDER` alone when ``names`` is empty."""
    unique: list[str] = []
    for n in (n.strip() for n in names):
        if n and n.casefold() not in {u.casefold() for u in unique}:
            unique.append(n)
    classes: list[LabelClass] = []
    taken = [(0, 0, 0)]  # the unlabeled colour
    for n in unique or [PLACEHOLDER]:
        color = distinct_color(taken)
        taken.append(color)
        classes.append(LabelClass(n, color))
    return LabelSet(name, tuple(classes))


def split_names(text: str) -> list[str]:
    """Class names typed in one line: separated by commas, semicolons or new lines."""
    return [n.strip() for n in re.split(r"[,;\n]+", text) if n.strip()]


def classes_file_near(folder: Path) -> Path | None:
    """A classes file in ``folder`` or its parent (a dataset's ``classes.json``)."""
    for where in (folder, folder.parent):
        for name in CLASS_FILES:
            if (where / name).is_file():
                return where / name
    return None


@dataclass(frozen=True)
class Choice:
    """One offered set of classes."""

    key: str  # a preset key, "file" or "empty"
    title: str
    labelset: LabelSet | None  # None: built from the typed names


class NewProjectPage(QWidget):
    """The question, as a page of the window; emits ``chosen(folder, labelset)`` or
    ``cancelled()``."""

    chosen = Signal(object, object)
    cancelled = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("newProjectPage")
        self.folder: Path | None = None
        self.title = QLabel()
        self.title.setObjectName("newProjectTitle")
        self.title.setWordWrap(True)
        self.title.setTextFormat(Qt.TextFormat.RichText)
        self.group = QButtonGroup(self)
        self.group.idToggled.connect(lambda _id, _on: self._sync())
        self.options = QVBoxLayout()
        self.options.setSpacing(6)
        self.names = QLineEdit()
        self.names.setObjectName("newProjectNames")
        self.names.setPlaceholderText("Class names, e.g. background, cell, nucleus (optional)")
        self.names.textEdited.connect(lambda _t: self._pick("empty"))
        self.names.returnPressed.connect(self.start)
        self.from_file = QPushButton("Classes from a file…")
        self.from_file.setObjectName("newProjectFromFile")
        self.from_file.clicked.connect(lambda _checked=False: self.choose_file())
        self.start_button = QPushButton("Start labelling")
        self.start_button.setObjectName("newProjectStart")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(lambda _checked=False: self.start())
        cancel = QPushButton("Cancel")
        cancel.setObjectName("newProjectCancel")
        cancel.clicked.connect(lambda _checked=False: self.cancelled.emit())
        self.choices: dict[str, Choice] = {}
        self.buttons: dict[str, QRadioButton] = {}

        card = QFrame()
        card.setObjectName("newProjectCard")
        card.setFrameShape(QFrame.Shape.StyledPanel)
        card.setFixedWidth(NOTE_WIDTH + 40)
        inner = QVBoxLayout(card)
        inner.setContentsMargins(20, 16, 20, 16)
        inner.addWidget(self.title)
        inner.addLayout(self.options)
        inner.addWidget(self.names)
        row = QHBoxLayout()
        row.addWidget(self.from_file)
        row.addStretch(1)
        row.addWidget(cancel)
        row.addWidget(self.start_button)
        inner.addLayout(row)
        body = QWidget()
        outer = QVBoxLayout(body)
        outer.addStretch(1)
        outer.addWidget(card, alignment=Qt.AlignmentFlag.AlignHCenter)
        outer.addStretch(2)
        scroll = QScrollArea()  # a short screen scrolls instead of cutting the buttons off
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(body)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll)

    # -- the offer ---------------------------------------------------------------------------

    def ask(self, folder: Path) -> None:
        """Offer the classes for a new project in ``folder``."""
        self.folder = folder
        count = sum(
            1
            for p in folder.iterdir()
            if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
        )
        self.title.setText(
            f"<h3>New project</h3><p>{count} image{'s' if count != 1 else ''} in "
            f"<b>{folder}</b>.</p><p>Which classes will you label? You can rename, add, "
            "merge or delete classes later in the Classes panel.</p>"
        )
        offers: list[Choice] = []
        found = classes_file_near(folder)
        if found is not None:
            try:
                ls, _void = read_classes_file(found)
                offers.append(Choice("file", f"The classes in {found.name} ({found.parent})", ls))
            except SegStudioError:
                pass  # not a classes file after all: the presets remain
        offers += [Choice(k, PRESET_TITLES.get(k, k), PRESETS[k]) for k in PRESETS]
        offers.append(Choice("empty", "Empty: I'll add my own classes", None))
        self._offer(offers, default=found is not None and offers[0].key == "file")

    def _offer(self, offers: list[Choice], *, default: bool) -> None:
        while self.options.count():
            item = self.options.takeAt(0)
            widget = item.widget()
            if widget is not None:  # gone at once: findChild must not find the old offer
                widget.setParent(None)
                widget.deleteLater()
        for button in self.group.buttons():
            self.group.removeButton(button)
        self.choices = {c.key: c for c in offers}
        self.buttons = {}
        bundled = _bundled()
        for i, choice in enumerate(offers):
            button = QRadioButton(choice.title)
            button.setObjectName(f"newProject_{choice.key}")
            self.group.addButton(button, i)
            self.buttons[choice.key] = button
            self.options.addWidget(button)
            detail = _detail(choice, bundled)
            note = QLabel(detail)
            note.setWordWrap(True)
            note.setContentsMargins(24, 0, 0, 4)
            note.setFixedWidth(NOTE_WIDTH)  # a wrapped label needs its height set from it
            note.setMinimumHeight(note.heightForWidth(NOTE_WIDTH))
            note.setForegroundRole(QPalette.ColorRole.PlaceholderText)  # a muted description
            self.options.addWidget(note)
        self.names.clear()
        if default:
            self.buttons["file"].setChecked(True)
        self._sync()

    def _pick(self, key: str) -> None:
        if key in self.buttons:
            self.buttons[key].setChecked(True)

    def _sync(self) -> None:
        self.start_button.setEnabled(self.current() is not None)

    def current(self) -> Choice | None:
        button = self.group.checkedButton()
        if button is None:
            return None
        return next((c for k, c in self.choices.items() if self.buttons.get(k) is button), None)

    def labelset(self) -> LabelSet | None:
        """The classes chosen (None: nothing chosen yet)."""
        choice = self.current()
        if choice is None:
            return None
        if choice.labelset is not None:
            return choice.labelset
        name = self.folder.name if self.folder is not None and self.folder.name else "custom"
        return custom_labelset(split_names(self.names.text()), name)

    # -- the answer --------------------------------------------------------------------------

    def choose_file(self) -> None:
        """Classes from a JSON/CSV file anywhere: offered first and chosen."""
        path, _ = QFileDialog.getOpenFileName(
            self, "Classes file", str(self.folder or ""), "Classes (*.json *.csv *.txt)"
        )
        if path:
            self.use_file(Path(path))

    def use_file(self, path: Path) -> bool:
        try:
            ls, _void = read_classes_file(path)
        except SegStudioError as exc:
            QMessageBox.warning(self, "Classes file", str(exc))
            return False
        others = [c for c in self.choices.values() if c.key != "file"]
        offer = Choice("file", f"The classes in {path.name} ({path.parent})", ls)
        self._offer([offer, *others], default=True)
        return True

    def start(self) -> None:
        ls = self.labelset()
        if ls is None or self.folder is None:
            return
        self.chosen.emit(self.folder, ls)


def _bundled() -> ModelSummary | None:
    """The bundled model's summary (read from its header, without torch)."""
    path = bundled_model_path()
    return None if path is None else read_summary(path, ModelKind.BUNDLED)


def _detail(choice: Choice, bundled: ModelSummary | None) -> str:
    if choice.labelset is None:
        return (
            "Type your class names below (or start with one class to rename). No model "
            "knows them yet: Learn as I paint trains on your first strokes."
        )
    names = choice.labelset.names
    shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
    if bundled is not None and bundled.misfit(choice.labelset) is None:
        return f"{shown}. The bundled model predicts these."
    return f"{shown}."
