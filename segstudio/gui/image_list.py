"""The image list: every image of the project with its status and a thumbnail.

A plain list model over :class:`~segstudio.io.project.ImageRecord` values,
shown with uniform row heights, so 10,000 images list at once. Thumbnails
are made on one background thread, only for the rows the view asks about
(the visible ones), at the screen's pixel ratio (sharp at 2x), centred in a
square of one size so every row's text starts at the same place. A file that
cannot be read (found when its thumbnail or the image fails to load) is
marked in red with the reason in its tooltip, and next/previous pass over it
with a note instead of stopping there.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import (
    QAbstractListModel,
    QEvent,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRect,
    QRunnable,
    QSize,
    Qt,
    QThreadPool,
    Signal,
)
from PySide6.QtGui import QBrush, QColor, QIcon, QImage, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QLabel,
    QListView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from segstudio.core.errors import SegStudioError
from segstudio.io.images import read_thumbnail
from segstudio.io.project import ImageRecord, ImageStatus

#: Thumbnail side in logical pixels (device pixels: times the screen's pixel ratio).
THUMB = 40
CACHE_SIZE = 4000
#: Space around a row's thumbnail and between its lines.
PAD = 4

STATUS_TEXT = {
    ImageStatus.UNLABELED: "unlabeled",
    ImageStatus.PREDICTED: "predicted",
    ImageStatus.IN_PROGRESS: "in progress",
    ImageStatus.REVIEWED: "reviewed",
}
STATUS_COLOR = {
    ImageStatus.UNLABELED: QColor(150, 150, 150),
    ImageStatus.PREDICTED: QColor(90, 160, 255),
    ImageStatus.IN_PROGRESS: QColor(255, 190, 60),
    ImageStatus.REVIEWED: QColor(80, 200, 110),
}
BROKEN_COLOR = QColor(230, 70, 60)

_Index = QModelIndex | QPersistentModelIndex


def square_thumbnail(rgb: np.ndarray, side: int) -> QImage:
    """``rgb`` (longest side at most ``side``) centred on a transparent ``side`` square."""
    rgb = np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    image = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888)
    out = QImage(side, side, QImage.Format.Format_ARGB32_Premultiplied)
    out.fill(Qt.GlobalColor.transparent)
    painter = QPainter(out)
    painter.drawImage((side - w) // 2, (side - h) // 2, image)
    painter.end()
    return out


class _ThumbnailJob(QRunnable):
    def __init__(
        self, loader: ThumbnailLoader, generation: int, name: str, path: Path, side: int
    ) -> None:
        super().__init__()
        self.loader, self.generation, self.name, self.path = loader, generation, name, path
        self.side = side

    def run(self) -> None:
        try:
            image = square_thumbnail(read_thumbnail(self.path, self.side), self.side)
            error = ""
        except SegStudioError as exc:
            image, error = QImage(), str(exc)
        self.loader.ready.emit(self.generation, self.name, image, error)


class ThumbnailLoader(QObject):
    """Makes thumbnails on one background thread; ``ready(generation, name, image, error)``
    (a null image and the reason when the file cannot be read)."""

    ready = Signal(int, str, QImage, str)

    def __init__(self) -> None:
        super().__init__()
        self.pool = QThreadPool()
        self.pool.setMaxThreadCount(1)  # never compete with painting or a model run
        self.generation = 0
        self._pending: set[str] = set()

    def reset(self) -> None:
        """Forget queued work (a new project); late results are recognised and dropped."""
        self.pool.clear()
        self.generation += 1
        self._pending.clear()

    def request(self, name: str, path: Path, side: int = THUMB) -> None:
        """Make the thumbnail of ``name`` on a ``side`` device pixels square."""
        if name not in self._pending:
            self._pending.add(name)
            self.pool.start(_ThumbnailJob(self, self.generation, name, path, side))

    def done(self, name: str) -> None:
        self._pending.discard(name)


class ImageListModel(QAbstractListModel):
    """Rows of image records; ``NameRole`` gives the image name, ``StatusRole`` the text
    under it (the status, or why the file cannot be read) and ``BrokenRole`` that reason."""

    NameRole = Qt.ItemDataRole.UserRole + 1
    StatusRole = Qt.ItemDataRole.UserRole + 2
    BrokenRole = Qt.ItemDataRole.UserRole + 3

    def __init__(self) -> None:
        super().__init__()
        self._records: list[ImageRecord] = []
        self._row: dict[str, int] = {}
        self._thumbs: OrderedDict[str, QIcon] = OrderedDict()
        self._marked: set[str] = set()
        self._broken: dict[str, str] = {}
        self._path_of: Callable[[str], Path] | None = None
        #: The screen's pixel ratio for new thumbnails (the view sets it).
        self.pixel_ratio: Callable[[], float] = lambda: 1.0
        self._blank: QIcon | None = None
        self.loader = ThumbnailLoader()
        self.loader.ready.connect(self._thumbnail_ready)

    def set_source(self, path_of: Callable[[str], Path] | None) -> None:
        """Where image files are (a new project): drops cached thumbnails and marks."""
        self.loader.reset()
        self._thumbs.clear()
        self._broken.clear()
        self._path_of = path_of

    def set_marked(self, names: set[str]) -> None:
        """Images held out for validation (shown as such)."""
        self._marked = set(names)
        self._changed_all()

    def refresh_thumbnails(self) -> None:
        """Make the thumbnails again (the window moved to a screen of another pixel ratio)."""
        self.loader.reset()
        self._thumbs.clear()
        self._changed_all()

    def _changed_all(self) -> None:
        if self._records:
            self.dataChanged.emit(self.index(0), self.index(len(self._records) - 1))

    # -- unreadable files --------------------------------------------------------------------

    def broken(self, name: str) -> str | None:
        """Why ``name`` cannot be read, or None (as far as is known)."""
        return self._broken.get(name)

    def set_broken(self, name: str, reason: str | None) -> None:
        """Mark ``name`` unreadable for ``reason`` (None: readable after all)."""
        if reason is None:
            if self._broken.pop(name, None) is None:
                return
            self._thumbs.pop(name, None)  # fixed: make its thumbnail again
        else:
            self._broken[name] = short_reason(name, reason)
        self._row_changed(name)

    def _row_changed(self, name: str) -> None:
        row = self._row.get(name)
        if row is not None:
            idx = self.index(row)
            self.dataChanged.emit(idx, idx)

    def _thumbnail_ready(self, generation: int, name: str, image: QImage, error: str) -> None:
        if generation != self.loader.generation:
            return
        self.loader.done(name)
        if image.isNull():
            self._thumbs[name] = QIcon()
            if error:
                self._broken[name] = short_reason(name, error)
        else:
            pixmap = QPixmap.fromImage(image)
            pixmap.setDevicePixelRatio(image.width() / THUMB)
            self._thumbs[name] = QIcon(pixmap)
        while len(self._thumbs) > CACHE_SIZE:
            self._thumbs.popitem(last=False)
        self._row_changed(name)

    # -- records -----------------------------------------------------------------------------

    def set_records(self, records: list[ImageRecord]) -> None:
        self.beginResetModel()
        self._records = list(records)
        self._row = {r.name: i for i, r in enumerate(self._records)}
        self.endResetModel()

    def update_record(self, record: ImageRecord) -> None:
        row = self._row.get(record.name)
        if row is not None:
            self._records[row] = record
            idx = self.index(row)
            self.dataChanged.emit(idx, idx)

    def row_of(self, name: str) -> int | None:
        return self._row.get(name)

    def record(self, row: int) -> ImageRecord:
        return self._records[row]

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008, N802 - Qt API
        return 0 if parent.isValid() else len(self._records)

    def _status_text(self, rec: ImageRecord) -> str:
        if rec.name in self._broken:
            return "cannot be read"
        held_out = "  ·  validation" if rec.name in self._marked else ""
        return f"{STATUS_TEXT[rec.status]}{held_out}"

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid():
            return None
        rec = self._records[index.row()]
        broken = self._broken.get(rec.name)
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{rec.name}    ·  {self._status_text(rec)}"
        if role == self.NameRole:
            return rec.name
        if role == self.StatusRole:
            return self._status_text(rec)
        if role == self.BrokenRole:
            return broken
        if role == Qt.ItemDataRole.ForegroundRole:
            return QBrush(BROKEN_COLOR if broken else STATUS_COLOR[rec.status])
        if role == Qt.ItemDataRole.ToolTipRole:
            if broken:
                return f"{rec.name}\ncannot be read: {broken}\nNext/previous pass over it."
            conf = "" if rec.confidence is None else f"\nmean confidence {rec.confidence:.2f}"
            who = f"\nchanged by {rec.updated_by}" if rec.updated_by else ""
            return f"{rec.name}\n{STATUS_TEXT[rec.status]}{conf}{who}"
        if role == Qt.ItemDataRole.DecorationRole:
            if broken:
                return QApplication.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
            icon = self._thumbs.get(rec.name)
            if icon is None and self._path_of is not None:  # a plain path join: no DB query
                side = round(THUMB * max(1.0, self.pixel_ratio()))
                self.loader.request(rec.name, self._path_of(rec.name), side)
            return icon
        return None


class ImageRowDelegate(QStyledItemDelegate):
    """A row: the thumbnail in a fixed square, the name, and the status in its colour
    under it; every row the same height, every text at the same place."""

    def sizeHint(self, option: QStyleOptionViewItem, index: _Index) -> QSize:  # noqa: N802
        # no width of its own: a row is as wide as the list (names are elided to fit)
        return QSize(THUMB + 2 * PAD, THUMB + 2 * PAD)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: _Index) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        style = opt.widget.style() if opt.widget is not None else QApplication.style()
        opt.text, opt.icon = "", QIcon()  # the panel (selection, hover) only
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)
        r = option.rect
        box = QRect(r.left() + PAD, r.top() + PAD, THUMB, THUMB)
        icon = index.data(Qt.ItemDataRole.DecorationRole)
        if isinstance(icon, QIcon) and not icon.isNull():
            icon.paint(painter, box, Qt.AlignmentFlag.AlignCenter)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        group = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        text_left = box.right() + 2 * PAD
        width = max(0, r.right() - PAD - text_left)
        half = THUMB // 2
        painter.save()
        fm = option.fontMetrics
        name = fm.elidedText(
            str(index.data(ImageListModel.NameRole)), Qt.TextElideMode.ElideMiddle, width
        )
        painter.setPen(option.palette.color(group))
        align = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
        painter.drawText(QRect(text_left, r.top() + PAD, width, half), align, name)
        brush = index.data(Qt.ItemDataRole.ForegroundRole)
        status = fm.elidedText(
            str(index.data(ImageListModel.StatusRole)), Qt.TextElideMode.ElideRight, width
        )
        if isinstance(brush, QBrush) and not selected:
            painter.setPen(brush.color())
        painter.drawText(QRect(text_left, r.top() + PAD + half, width, half), align, status)
        painter.restore()


class ImageListPanel(QWidget):
    """Filter by status and pick an image; emits ``imageChosen(name)``, and ``note(text)``
    when next/previous passed over files that cannot be read (after the move it made)."""

    imageChosen = Signal(str)  # noqa: N815 - Qt naming
    note = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("imageListPanel")
        self.filter = QComboBox()
        self.filter.setObjectName("statusFilter")
        self.filter.addItem("All images", None)
        for status in ImageStatus:
            self.filter.addItem(STATUS_TEXT[status].capitalize(), status)
        self.view = QListView()
        self.view.setObjectName("imageList")
        self.view.setUniformItemSizes(True)
        self.view.setIconSize(QSize(THUMB, THUMB))
        self.view.setEditTriggers(QListView.EditTrigger.NoEditTriggers)
        self.view.setItemDelegate(ImageRowDelegate(self.view))
        self.view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.model = ImageListModel()
        self.model.pixel_ratio = self.view.devicePixelRatioF
        self.view.setModel(self.model)
        self.count = QLabel()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.filter)
        layout.addWidget(self.view)
        layout.addWidget(self.count)
        self.view.selectionModel().currentChanged.connect(self._current_changed)
        self._all: list[ImageRecord] = []
        #: The image the last next/previous went to, and which way (+1 or -1).
        self.stepped: tuple[str, int] | None = None
        self.filter.currentIndexChanged.connect(self._refilter)

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.DevicePixelRatioChange:
            self.model.refresh_thumbnails()  # sharp on the new screen
        return super().event(event)

    @property
    def status_filter(self) -> ImageStatus | None:
        data = self.filter.currentData()  # Qt hands the enum back as a plain str
        return None if data is None else ImageStatus(data)

    def set_records(self, records: list[ImageRecord], keep: str | None = None) -> None:
        self._all = list(records)
        self._refilter(keep=keep)

    def _refilter(self, *_args: object, keep: str | None = None) -> None:
        keep = keep or self.current_name()
        status = self.status_filter
        shown = [r for r in self._all if status is None or r.status is status]
        blocker = self.view.selectionModel().blockSignals(True)
        self.model.set_records(shown)
        self.view.selectionModel().blockSignals(blocker)
        self.count.setText(f"{len(shown)} of {len(self._all)} images")
        if keep is not None:
            self.select(keep, emit=False)

    def set_source(self, path_of: Callable[[str], Path] | None) -> None:
        """Where the image files are, for thumbnails (None: no project)."""
        self.model.set_source(path_of)

    def set_marked(self, names: set[str]) -> None:
        """Images held out for validation (shown as such)."""
        self.model.set_marked(names)

    def set_broken(self, name: str, reason: str | None) -> None:
        """Mark ``name`` as a file that cannot be read, for ``reason`` (None: it can)."""
        self.model.set_broken(name, reason)

    def broken(self, name: str) -> str | None:
        """Why ``name`` cannot be read, or None."""
        return self.model.broken(name)

    def show_all(self) -> None:
        """Clear the status filter."""
        self.filter.setCurrentIndex(0)

    def update_record(self, record: ImageRecord) -> None:
        for i, r in enumerate(self._all):
            if r.name == record.name:
                self._all[i] = record
                break
        self.model.update_record(record)

    def record_of(self, name: str) -> ImageRecord | None:
        """The record the list holds for ``name`` (no store query)."""
        return next((r for r in self._all if r.name == name), None)

    def names(self) -> list[str]:
        return [r.name for r in self._all]

    def current_name(self) -> str | None:
        idx = self.view.currentIndex()
        return idx.data(ImageListModel.NameRole) if idx.isValid() else None

    def select(self, name: str, *, emit: bool = True) -> bool:
        row = self.model.row_of(name)
        if row is None:
            return False
        sm = self.view.selectionModel()
        blocked = sm.blockSignals(not emit)
        self.view.setCurrentIndex(self.model.index(row))
        sm.blockSignals(blocked)
        self.view.scrollTo(self.model.index(row))
        return True

    def step(self, delta: int, *, start: str | None = None) -> bool:
        """Go to the next (+1) or previous (-1) image of the filtered list, passing over
        files known to be unreadable (``note`` names them); from ``start`` when given,
        else from the current row. False when there is no readable image that way."""
        n = self.model.rowCount()
        if n == 0:
            return False
        row = self.model.row_of(start) if start is not None else None
        if row is None:
            row = self.view.currentIndex().row()
        if row < 0:
            row, delta = -1, 1
        skipped: list[str] = []
        target = row + delta
        while 0 <= target < n:
            name = self.model.record(target).name
            if self.model.broken(name) is None:
                break
            skipped.append(name)
            target += delta
        text = skipped_text(skipped, self.model.broken) if skipped else ""
        if not 0 <= target < n:
            if skipped:
                self.note.emit(f"{text}; no readable image {'after' if delta > 0 else 'before'}")
            return False
        name = self.model.record(target).name
        self.stepped = (name, delta)
        self.view.setCurrentIndex(self.model.index(target))
        if skipped:  # after the move: the note outlasts the image's opening
            self.note.emit(text)
        return True

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            name = current.data(ImageListModel.NameRole)
            if self.stepped is not None and self.stepped[0] != name:
                self.stepped = None  # reached otherwise: a click, a search
            self.imageChosen.emit(name)


def short_reason(name: str, reason: str) -> str:
    """A read error without the file's path in front (the list and the note name it)."""
    head, sep, rest = reason.partition(f"{name}: ")
    return rest if sep and (not head or head.endswith(("/", "\\"))) else reason


def skipped_text(names: list[str], reason: Callable[[str], str | None]) -> str:
    """The status-bar note for files next/previous passed over."""
    if len(names) == 1:
        return f"Skipped {names[0]}: it cannot be read ({reason(names[0])})"
    return (
        f"Skipped {len(names)} files that cannot be read: "
        + ", ".join(names[:3])
        + ("…" if len(names) > 3 else "")
    )
