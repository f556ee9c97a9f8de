"""Small class dialogs: the merge target, and the quick class picker.

Merging rewrites every mask of the project, so its dialog starts with no
target chosen and Cancel as the default button: Enter never merges. The
quick picker reaches every class by name from the keyboard (the number
keys reach only ten): type to filter, arrows to move, Enter to choose, Esc
to close, as in an editor's command palette.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QPoint, QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QKeyEvent, QPainter, QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFrame,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from segstudio.core.labelset import Color

#: The number keys that choose a class, in palette order (class 10 is key 0).
CLASS_KEYS = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "0")


def class_key(index: int) -> str:
    """The key that chooses class ``index`` ("" for classes beyond the tenth)."""
    return CLASS_KEYS[index] if 0 <= index < len(CLASS_KEYS) else ""


def swatch(color: tuple[int, int, int], size: int = 16) -> QIcon:
    """A square of ``color`` with a thin dark border (a light colour stays visible)."""
    pix = QPixmap(size, size)
    pix.fill(QColor(60, 60, 60))
    inner = QPixmap(size - 2, size - 2)
    inner.fill(QColor(*color))
    p = QPainter(pix)
    p.drawPixmap(1, 1, inner)
    p.end()
    return QIcon(pix)


class MergeDialog(QDialog):
    """Asks which class to merge ``source`` into; nothing is chosen at first, Cancel is the
    default button, and "Merge" is enabled only once a target is chosen."""

    def __init__(
        self,
        names: Sequence[str],
        colors: Sequence[Color],
        source: int,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("mergeDialog")
        self.setWindowTitle("Merge class")
        self._ids: list[int] = []
        text = QLabel(
            f"Merge “{names[source]}” into which class?<br>"
            f"Every pixel of “{names[source]}” in <b>every image of the project</b> gets the "
            "class you choose, and the class is removed. This cannot be undone."
        )
        text.setWordWrap(True)
        self.list = QListWidget()
        self.list.setObjectName("mergeTargets")
        self.list.setIconSize(QSize(16, 16))
        for i, (name, color) in enumerate(zip(names, colors, strict=True)):
            if i != source:
                self.list.addItem(QListWidgetItem(swatch(color), name))
                self._ids.append(i)
        self.list.setCurrentRow(-1)
        self.list.clearSelection()
        buttons = QDialogButtonBox()
        self.merge_button = buttons.addButton("Merge", QDialogButtonBox.ButtonRole.AcceptRole)
        self.merge_button.setObjectName("mergeAccept")
        self.merge_button.setEnabled(False)
        self.merge_button.setAutoDefault(False)
        self.cancel_button: QPushButton = buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.cancel_button.setObjectName("mergeCancel")
        self.cancel_button.setDefault(True)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.list.itemSelectionChanged.connect(
            lambda: self.merge_button.setEnabled(bool(self.list.selectedItems()))
        )
        self.list.itemDoubleClicked.connect(lambda _item: self.accept())
        layout = QVBoxLayout(self)
        layout.addWidget(text)
        layout.addWidget(self.list)
        layout.addWidget(buttons)
        self.cancel_button.setFocus()

    def target(self) -> int | None:
        """The class id chosen, or None."""
        rows = [self.list.row(item) for item in self.list.selectedItems()]
        return self._ids[rows[0]] if rows else None

    def showEvent(self, event: object) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)  # type: ignore[arg-type]
        self.cancel_button.setFocus()  # Enter or Space cancels


def ask_merge_target(
    parent: QWidget, names: Sequence[str], colors: Sequence[Color], source: int
) -> int | None:
    """Run the merge dialog; the target class id, or None when cancelled."""
    dialog = MergeDialog(names, colors, source, parent)
    try:
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return None
        return dialog.target()
    finally:
        dialog.deleteLater()


class _FilterEdit(QLineEdit):
    """The picker's filter line: Up and Down move in the list below it."""

    def __init__(self, picker: ClassPicker) -> None:
        super().__init__(picker)
        self._picker = picker

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt API
        if event.key() in (Qt.Key.Key_Up, Qt.Key.Key_Down, Qt.Key.Key_PageUp, Qt.Key.Key_PageDown):
            self._picker.step_row(event)
            return
        super().keyPressEvent(event)


class ClassPicker(QFrame):
    """A popup list of every class: type to filter (by name or number), Enter chooses.

    Signals
    -------
    chosen(int)
        The class id chosen.
    """

    chosen = Signal(int)

    def __init__(
        self,
        names: Sequence[str],
        colors: Sequence[Color],
        current: int = 0,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent, Qt.WindowType.Popup)
        self.setObjectName("classPicker")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.filter = _FilterEdit(self)
        self.filter.setObjectName("classPickerFilter")
        self.filter.setPlaceholderText("Type to find a class, Enter to choose")
        self.filter.setClearButtonEnabled(True)
        self.list = QListWidget(self)
        self.list.setObjectName("classPickerList")
        self.list.setIconSize(QSize(16, 16))
        self.list.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # typing stays in the filter
        for i, (name, color) in enumerate(zip(names, colors, strict=True)):
            key = class_key(i)
            item = QListWidgetItem(swatch(color), f"{name}    {key}" if key else name)
            item.setData(Qt.ItemDataRole.UserRole, i)
            item.setToolTip(f"class {i}" + (f", key {key}" if key else ""))
            self.list.addItem(item)
        self.filter.textChanged.connect(self._refilter)
        self.filter.returnPressed.connect(self._choose_current)
        self.list.itemClicked.connect(self._choose)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.filter)
        layout.addWidget(self.list)
        rows = min(max(len(names), 1), 14)
        self.resize(280, 48 + rows * max(self.list.sizeHintForRow(0), 18))
        if 0 <= current < self.list.count():
            self.list.setCurrentRow(current)

    def visible_ids(self) -> list[int]:
        """The class ids the filter leaves, in order."""
        return [
            int(self.list.item(r).data(Qt.ItemDataRole.UserRole))
            for r in range(self.list.count())
            if not self.list.item(r).isHidden()
        ]

    def _refilter(self, text: str) -> None:
        needle = text.strip().lower()
        first = None
        for r in range(self.list.count()):
            item = self.list.item(r)
            i = int(item.data(Qt.ItemDataRole.UserRole))
            name = item.text().lower()
            hit = not needle or needle in name or needle == str(i) or needle == class_key(i)
            item.setHidden(not hit)
            if hit and first is None:
                first = r
        # the best guess is the first match, unless the current one still matches
        cur = self.list.currentItem()
        if first is not None and (cur is None or cur.isHidden() or needle):
            self.list.setCurrentRow(first)

    def step_row(self, event: QKeyEvent) -> None:
        """Up/Down (and page keys) from the filter move the current row."""
        rows = [r for r in range(self.list.count()) if not self.list.item(r).isHidden()]
        if not rows:
            return
        cur = self.list.currentRow()
        pos = rows.index(cur) if cur in rows else -1
        step = {Qt.Key.Key_Up: -1, Qt.Key.Key_Down: 1, Qt.Key.Key_PageUp: -8}.get(event.key(), 8)
        pos = min(max(pos + step, 0), len(rows) - 1)
        self.list.setCurrentRow(rows[pos])

    def _choose_current(self) -> None:
        item = self.list.currentItem()
        if item is not None and not item.isHidden():
            self._choose(item)

    def _choose(self, item: QListWidgetItem) -> None:
        self.chosen.emit(int(item.data(Qt.ItemDataRole.UserRole)))
        self.close()

    def popup(self, at: QPoint) -> None:
        """Show the picker with its top-left corner at ``at`` (global), the filter focused."""
        self.place(at)
        self.show()
        self.raise_()
        self.activateWindow()
        self.filter.setFocus()

    def place(self, at: QPoint) -> None:
        """Move the popup to ``at`` (global), kept on the screen."""
        screen = self.screen().availableGeometry() if self.screen() is not None else None
        x, y = at.x(), at.y()
        if screen is not None:
            x = min(max(x, screen.left()), screen.right() - self.width())
            y = min(max(y, screen.top()), screen.bottom() - self.height())
        self.move(QPoint(x, y))
