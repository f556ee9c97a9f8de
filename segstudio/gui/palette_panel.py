"""The class palette: pick, show/hide, add, rename, recolour, delete, merge, reorder classes.

The panel edits a :class:`LabelSet` value and never touches masks: each edit
is emitted as ``labelsetEdited(new_labelset, lut, description)``, where
``lut`` (a 256-entry uint8 table, or None when no class id moves) tells the
window how to migrate every stored mask consistently.

Each row shows the class's colour, its key (1-9, 0 for the tenth; the quick
picker reaches the rest) and how many pixels of the open image carry it; a
line under the list says how much of the image is labelled.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtWidgets import (
    QColorDialog,
    QFileDialog,
    QGridLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QSizePolicy,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionToolButton,
    QStyleOptionViewItem,
    QStylePainter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from segstudio.core.edit import lut_delete, lut_merge, lut_move
from segstudio.core.errors import SegStudioError
from segstudio.core.labelset import (
    PRESETS,
    UNLABELED,
    LabelClass,
    LabelSet,
    distinct_color,
    preset,
)
from segstudio.gui.class_dialogs import ask_merge_target, class_key, swatch

#: The item data role holding a row's pixel count (shown right-aligned).
COUNT_ROLE = Qt.ItemDataRole.UserRole + 1


def format_count(n: int) -> str:
    """A pixel count in a few characters: 950, 12,345, 123k, 1.23M."""
    if n < 100_000:
        return f"{n:,}"
    if n < 1_000_000:
        return f"{n / 1000:.0f}k"
    return f"{n / 1e6:.3g}M"


class _CountDelegate(QStyledItemDelegate):
    """Draws a row as usual, with its pixel count right-aligned in a muted colour."""

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        super().paint(painter, option, index)
        text = index.data(COUNT_ROLE)
        if not text:
            return
        painter.save()
        role = (
            QPalette.ColorRole.HighlightedText
            if option.state & QStyle.StateFlag.State_Selected
            else QPalette.ColorRole.PlaceholderText
        )
        painter.setPen(option.palette.color(role))
        rect = option.rect.adjusted(0, 0, -6, 0)
        painter.drawText(rect, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, text)
        painter.restore()


class MenuButton(QToolButton):
    """A tool button that opens its menu, with the menu's arrow in its text: the style
    draws its own arrow in the bottom-right corner, over the text of a narrow button."""

    ARROW = "\u25be"  # ▾

    def paintEvent(self, _event: object) -> None:  # noqa: N802 - Qt API
        painter = QStylePainter(self)
        option = QStyleOptionToolButton()
        self.initStyleOption(option)
        option.features &= ~QStyleOptionToolButton.ToolButtonFeature.HasMenu  # no corner arrow
        painter.drawComplexControl(QStyle.ComplexControl.CC_ToolButton, option)


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


class PalettePanel(QWidget):
    """Class list with swatches, keys (1-9, 0), pixel counts, show/hide per class, and
    class editing."""

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
        self.list.setItemDelegate(_CountDelegate(self.list))
        self.summary = QLabel()
        self.summary.setObjectName("classSummary")
        self.summary.setToolTip("Pixels of the open image that carry a label")
        self._counts: np.ndarray | None = None
        buttons = QGridLayout()
        buttons.setSpacing(3)
        # tool buttons: compact enough for a narrow dock (push buttons are 80 px at least).
        # Every slot is called with no argument: clicked(bool) must not land in a parameter.
        specs = [
            ("Add", "classAdd", self.add, "Add a class (it gets a colour unlike the others)"),
            ("Rename", "classRename", self.rename, "Rename the chosen class"),
            ("Colour", "classRecolour", self.recolour, "Choose the chosen class's colour"),
            ("Up", "classUp", lambda: self.move(-1), "Move the chosen class up"),
            ("Merge…", "classMerge", self.merge, "Merge the chosen class into another class"),
            ("Delete", "classDelete", self.delete, "Delete the chosen class from every image"),
            ("Presets", "classPresets", None, "Use another set of classes"),
            ("Down", "classDown", lambda: self.move(+1), "Move the chosen class down"),
        ]
        made: dict[str, QToolButton] = {}
        for i, (text, name, slot, tip) in enumerate(specs):
            b = made[name] = MenuButton() if slot is None else QToolButton()
            b.setObjectName(name)
            b.setText(f"{text} {MenuButton.ARROW}" if slot is None else text)
            b.setToolTip(tip)
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Space must never press these
            if text in ("Up", "Down"):
                b.setArrowType(Qt.ArrowType.UpArrow if text == "Up" else Qt.ArrowType.DownArrow)
            else:
                b.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            if slot is not None:
                b.clicked.connect(lambda _checked=False, f=slot: f())
            buttons.addWidget(b, i // 4, i % 4)
        self.presets = made["classPresets"]
        self.presets.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.presets)
        for key in sorted(PRESETS):
            menu.addAction(PRESETS[key].name, lambda k=key: self.use_labelset(preset(k)))
        menu.addSeparator()
        menu.addAction("Import classes JSON…", self.import_json)
        self.presets.setMenu(menu)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.list)
        layout.addWidget(self.summary)
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
                # a figure space is as wide as a digit: names line up with or without a key
                key = class_key(i) or "\u2007"
                item = QListWidgetItem(swatch(cls.color), f"{key}  {cls.name}")
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(
                    Qt.CheckState.Unchecked if i in hidden else Qt.CheckState.Checked
                )
                self.list.addItem(item)
        self._filling = False
        self._show_counts()
        if labelset is not None and labelset.num_classes:
            row = 0 if keep_row is None else min(max(keep_row, 0), labelset.num_classes - 1)
            self.choose(row)
        self.hiddenChanged.emit(self.hidden())

    def set_counts(self, counts: np.ndarray | None) -> None:
        """Pixels per class value in the open image (256 entries; None: not known)."""
        self._counts = None if counts is None else np.asarray(counts, np.int64)
        self._show_counts()

    def count(self, index: int) -> int | None:
        """Pixels of class ``index`` in the open image, as shown (None: not known)."""
        return None if self._counts is None else int(self._counts[index])

    def _show_counts(self) -> None:
        ls, counts = self.labelset, self._counts
        total = 0 if counts is None else int(counts.sum())
        for i in range(self.list.count()):
            item = self.list.item(i)
            if ls is None or i >= ls.num_classes:
                continue
            cls = ls.classes[i]
            key = class_key(i)
            how = f"key {key}" if key else "Ctrl+K or ` to pick it by name"
            tip = f"class {i}: {cls.name}, RGB {cls.color}; {how}; untick to hide"
            if counts is not None and total:
                n = int(counts[i])
                item.setData(COUNT_ROLE, format_count(n) if n else None)  # no noise of zeros
                tip += f"\n{n:,} pixels ({100 * n / total:.1f} %) of this image"
            else:
                item.setData(COUNT_ROLE, None)
            item.setToolTip(tip)
        if counts is None or not total:
            self.summary.setText("")
            return
        unlabeled = int(counts[UNLABELED])
        done = 100 * (total - unlabeled) / total
        self.summary.setText(f"Labelled {done:.1f} % · unlabelled {format_count(unlabeled)} px")

    def current(self) -> int:
        return max(self.list.currentRow(), 0)

    def choose(self, index: int) -> None:
        """Make class ``index`` the current one and scroll it into view."""
        if self.labelset is not None and 0 <= index < self.labelset.num_classes:
            self.list.setCurrentRow(index)
            self.list.scrollToItem(self.list.item(index))

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
            taken = [c.color for c in self.labelset.classes] + [self.labelset.unlabeled_color]
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
        """Merge the current class into ``target``; without one, a dialog asks for it
        (nothing chosen at first, Cancel the default) and is the only confirmation."""
        if self.labelset is None or self.labelset.num_classes <= 1:
            return
        i = self.current()
        names = list(self.labelset.names)
        if target is None:
            colors = [c.color for c in self.labelset.classes]
            target = ask_merge_target(self, names, colors, i)
            if target is None:
                return
            confirm = False  # the dialog said what happens and asked
        if not 0 <= target < len(names) or target == i:
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
        """Ask before a project-wide change; No is the default (Enter must not rewrite)."""
        no, yes = QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes
        return QMessageBox.question(self, "Classes", text, yes | no, no) == yes
