"""The class palette: pick, show/hide, add, rename, recolour, delete, merge, reorder classes.

The panel edits a :class:`LabelSet` value and never touches masks: each edit
is emitted as ``labelsetEdited(new_labelset, lut, description)``, where
``lut`` (a 256-entry uint8 table, or None when no class id moves) tells the
window how to migrate every stored mask consistently.
"""

from __future__ import annotations

import colorsys
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QColorDialog,
    QFileDialog,
    QGridLayout,
    QInputDialog,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from segstudio.core.edit import lut_delete, lut_merge, lut_move
from segstudio.core.errors import SegStudioError
from segstudio.core.labelset import PRESETS, UNLABELED, LabelClass, LabelSet, preset


def swatch(color: tuple[int, int, int], size: int = 16) -> QIcon:
    pix = QPixmap(size, size)
    pix.fill(QColor(*color))
    return QIcon(pix)


def lut_by_name(old: LabelSet, new: LabelSet) -> tuple[np.ndarray, list[str]]:
    """Map class ids of ``old`` to the class of the same name in ``new`` (case-insensitive);
    returns the LUT and the names that have no counterpart (they become unlabeled)."""
    lut = np.arange(256, dtype=np.uint8)
    lost = []
    index = {n.lower(): i for i, n in enumerate(new.names)}
    for i, name in enumerate(old.names):
        j = index.get(name.lower())
        if j is None:
            lost.append(name)
            lut[i] = UNLABELED
        else:
            lut[i] = j
    lut[old.num_classes : UNLABELED] = UNLABELED
    return lut, lost


def distinct_color(taken: set[tuple[int, int, int]]) -> tuple[int, int, int]:
    """A saturated colour not yet in ``taken`` (golden-ratio hue steps)."""
    for k in range(1, 4096):
        h = (k * 0.618033988749895) % 1.0
        r, g, b = colorsys.hsv_to_rgb(h, 0.75, 0.95 - 0.3 * ((k // 64) % 2))
        c = (round(r * 255), round(g * 255), round(b * 255))
        if c not in taken:
            return c
    raise SegStudioError("no free colour left")


class PalettePanel(QWidget):
    """Class list with swatches, keys 1-9, show/hide per class, and class editing."""

    classChosen = Signal(int)  # noqa: N815 - Qt naming
    hiddenChanged = Signal(frozenset)  # noqa: N815
    labelsetEdited = Signal(object, object, str)  # noqa: N815 - (LabelSet, lut|None, what)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("palettePanel")
        self.labelset: LabelSet | None = None
        self.list = QListWidget()
        self.list.setObjectName("classList")
        self.list.setIconSize(QSize(16, 16))
        self.list.setMinimumHeight(200)  # a dozen classes stay visible beside the training plots
        self.list.currentRowChanged.connect(self._row_changed)
        self.list.itemChanged.connect(self._item_changed)
        self.list.itemDoubleClicked.connect(lambda _item: self.recolour())
        buttons = QGridLayout()
        specs = [
            ("Add", "classAdd", self.add),
            ("Rename", "classRename", self.rename),
            ("Colour", "classRecolour", self.recolour),
            ("Delete", "classDelete", self.delete),
            ("Merge into…", "classMerge", self.merge),
            ("Up", "classUp", lambda: self.move(-1)),
            ("Down", "classDown", lambda: self.move(+1)),
        ]
        for i, (text, name, slot) in enumerate(specs):
            b = QPushButton(text)
            b.setObjectName(name)
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Space must never press these
            b.clicked.connect(slot)
            buttons.addWidget(b, i // 4, i % 4)
        self.presets = QToolButton()
        self.presets.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.presets.setObjectName("classPresets")
        self.presets.setText("Presets")
        self.presets.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.presets)
        for key in sorted(PRESETS):
            menu.addAction(PRESETS[key].name, lambda k=key: self.use_labelset(preset(k)))
        menu.addSeparator()
        menu.addAction("Import classes JSON…", self.import_json)
        self.presets.setMenu(menu)
        buttons.addWidget(self.presets, 1, 3)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.list)
        layout.addLayout(buttons)
        self._filling = False

    # -- state ---------------------------------------------------------------------------

    def set_labelset(
        self,
        labelset: LabelSet | None,
        keep_row: int | None = None,
        hidden: frozenset[int] | None = None,
    ) -> None:
        hidden = self.hidden() if hidden is None else hidden
        self.labelset = labelset
        self._filling = True
        self.list.clear()
        if labelset is not None:
            for i, cls in enumerate(labelset.classes):
                key = f"{i + 1}  " if i < 9 else "    "
                item = QListWidgetItem(swatch(cls.color), f"{key}{cls.name}")
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(
                    Qt.CheckState.Unchecked if i in hidden else Qt.CheckState.Checked
                )
                item.setToolTip(f"class {i}: {cls.name}, RGB {cls.color}; untick to hide")
                self.list.addItem(item)
        self._filling = False
        if labelset is not None and labelset.num_classes:
            row = 0 if keep_row is None else min(max(keep_row, 0), labelset.num_classes - 1)
            self.list.setCurrentRow(row)
        self.hiddenChanged.emit(self.hidden())

    def current(self) -> int:
        return max(self.list.currentRow(), 0)

    def choose(self, index: int) -> None:
        if self.labelset is not None and 0 <= index < self.labelset.num_classes:
            self.list.setCurrentRow(index)

    def hidden(self) -> frozenset[int]:
        return frozenset(
            i
            for i in range(self.list.count())
            if self.list.item(i).checkState() == Qt.CheckState.Unchecked
        )

    def _row_changed(self, row: int) -> None:
        if row >= 0 and not self._filling:
            self.classChosen.emit(row)

    def _item_changed(self, _item: QListWidgetItem) -> None:
        if not self._filling:
            self.hiddenChanged.emit(self.hidden())

    # -- edits ---------------------------------------------------------------------------

    def _emit(self, classes: list[LabelClass], lut: np.ndarray | None, what: str) -> None:
        assert self.labelset is not None
        try:
            new = LabelSet(self.labelset.name, tuple(classes), self.labelset.unlabeled_color)
        except SegStudioError as exc:
            QMessageBox.warning(self, "Classes", str(exc))
            return
        self.labelsetEdited.emit(new, lut, what)

    def add(self) -> None:
        if self.labelset is None:
            return
        name, ok = QInputDialog.getText(self, "Add class", "Name of the new class:")
        if ok and name.strip():
            taken = {c.color for c in self.labelset.classes} | {self.labelset.unlabeled_color}
            classes = [*self.labelset.classes, LabelClass(name.strip(), distinct_color(taken))]
            self._emit(classes, None, f"add class {name.strip()}")

    def rename(self) -> None:
        if self.labelset is None:
            return
        i = self.current()
        old = self.labelset.classes[i]
        name, ok = QInputDialog.getText(self, "Rename class", "New name:", text=old.name)
        if ok and name.strip() and name.strip() != old.name:
            classes = list(self.labelset.classes)
            classes[i] = LabelClass(name.strip(), old.color)
            self._emit(classes, None, f"rename {old.name} to {name.strip()}")

    def recolour(self, color: tuple[int, int, int] | None = None) -> None:
        if self.labelset is None:
            return
        i = self.current()
        old = self.labelset.classes[i]
        if color is None:
            picked = QColorDialog.getColor(QColor(*old.color), self, f"Colour of {old.name}")
            if not picked.isValid():
                return
            color = (picked.red(), picked.green(), picked.blue())
        classes = list(self.labelset.classes)
        classes[i] = LabelClass(old.name, color)
        self._emit(classes, None, f"recolour {old.name}")

    def delete(self, *, confirm: bool = True) -> None:
        if self.labelset is None or self.labelset.num_classes <= 1:
            return
        i = self.current()
        name = self.labelset.names[i]
        if confirm and not self._confirm(
            f"Delete class “{name}”? Its pixels become unlabeled in every image of the project."
        ):
            return
        classes = [c for j, c in enumerate(self.labelset.classes) if j != i]
        self._emit(classes, lut_delete(self.labelset.num_classes, i), f"delete class {name}")

    def merge(self, target: int | None = None, *, confirm: bool = True) -> None:
        if self.labelset is None or self.labelset.num_classes <= 1:
            return
        i = self.current()
        names = list(self.labelset.names)
        if target is None:
            others = [n for j, n in enumerate(names) if j != i]
            choice, ok = QInputDialog.getItem(
                self, "Merge class", f"Merge “{names[i]}” into:", others, 0, False
            )
            if not ok:
                return
            target = names.index(choice)
        if target == i:
            return
        if confirm and not self._confirm(
            f"Merge “{names[i]}” into “{names[target]}” in every image of the project?"
        ):
            return
        classes = [c for j, c in enumerate(self.labelset.classes) if j != i]
        lut = lut_merge(self.labelset.num_classes, i, target)
        self._emit(classes, lut, f"merge {names[i]} into {names[target]}")

    def move(self, delta: int) -> None:
        if self.labelset is None:
            return
        i = self.current()
        j = i + delta
        if not 0 <= j < self.labelset.num_classes:
            return
        classes = list(self.labelset.classes)
        classes.insert(j, classes.pop(i))
        self._emit(classes, lut_move(self.labelset.num_classes, i, j), f"move {classes[j].name}")

    def use_labelset(self, new: LabelSet, *, confirm: bool = True) -> None:
        """Switch to another label set, mapping classes by name."""
        if self.labelset is None:
            self.labelsetEdited.emit(new, None, f"use classes {new.name}")
            return
        lut, lost = lut_by_name(self.labelset, new)
        if lost and confirm:
            shown = ", ".join(lost[:8]) + ("…" if len(lost) > 8 else "")
            if not self._confirm(
                f"{new.name} has no class named {shown}; those pixels become unlabeled. Go on?"
            ):
                return
        identity = bool(
            np.array_equal(lut[: self.labelset.num_classes], np.arange(self.labelset.num_classes))
        )
        self.labelsetEdited.emit(new, None if identity else lut, f"use classes {new.name}")

    def import_json(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import classes", "", "Classes JSON (*.json)")
        if not path:
            return
        try:
            new = LabelSet.load(Path(path))
        except SegStudioError as exc:
            QMessageBox.warning(self, "Import classes", str(exc))
            return
        self.use_labelset(new)

    def _confirm(self, text: str) -> bool:
        answer = QMessageBox.question(self, "Classes", text)
        return answer == QMessageBox.StandardButton.Yes
