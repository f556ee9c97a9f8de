"""The image list: every image of the project with its status and a thumbnail.

A plain list model over :class:`~segstudio.io.project.ImageRecord` values,
shown with uniform row heights, so 10,000 images list at once. Thumbnails
are made on one background thread, only for the rows the view asks about
(the visible ones), and cached.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRunnable,
    QSize,
    Qt,
    QThreadPool,
    Signal,
)
from PySide6.QtGui import QBrush, QColor, QIcon, QImage, QPixmap
from PySide6.QtWidgets import QComboBox, QLabel, QListView, QVBoxLayout, QWidget

from segstudio.core.errors import SegStudioError
from segstudio.io.images import read_thumbnail
from segstudio.io.project import ImageRecord, ImageStatus

THUMB = 40
CACHE_SIZE = 4000

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

_Index = QModelIndex | QPersistentModelIndex


class _ThumbnailJob(QRunnable):
    def __init__(self, loader: ThumbnailLoader, generation: int, name: str, path: Path) -> None:
        super().__init__()
        self.loader, self.generation, self.name, self.path = loader, generation, name, path

    def run(self) -> None:
        try:
            rgb = np.ascontiguousarray(read_thumbnail(self.path, THUMB))
            h, w = rgb.shape[:2]
            image = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
        except SegStudioError:
            image = QImage()
        self.loader.ready.emit(self.generation, self.name, image)


class ThumbnailLoader(QObject):
    """Makes thumbnails on one background thread; ``ready(generation, name, image)``."""

    ready = Signal(int, str, QImage)

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

    def request(self, name: str, path: Path) -> None:
        if name not in self._pending:
            self._pending.add(name)
            self.pool.start(_ThumbnailJob(self, self.generation, name, path))

    def done(self, name: str) -> None:
        self._pending.discard(name)


class ImageListModel(QAbstractListModel):
    """Rows of image records; ``NameRole`` gives the image name."""

    NameRole = Qt.ItemDataRole.UserRole + 1

    def __init__(self) -> None:
        super().__init__()
        self._records: list[ImageRecord] = []
        self._row: dict[str, int] = {}
        self._thumbs: OrderedDict[str, QIcon] = OrderedDict()
        self._marked: set[str] = set()
        self._path_of: Callable[[str], Path] | None = None
        self.loader = ThumbnailLoader()
        self.loader.ready.connect(self._thumbnail_ready)

    def set_source(self, path_of: Callable[[str], Path] | None) -> None:
        """Where image files are (a new project): drops cached thumbnails."""
        self.loader.reset()
        self._thumbs.clear()
        self._path_of = path_of

    def set_marked(self, names: set[str]) -> None:
        """Images held out for validation (shown as such)."""
        self._marked = set(names)
        if self._records:
            self.dataChanged.emit(self.index(0), self.index(len(self._records) - 1))

    def _thumbnail_ready(self, generation: int, name: str, image: QImage) -> None:
        if generation != self.loader.generation:
            return
        self.loader.done(name)
        self._thumbs[name] = QIcon(QPixmap.fromImage(image)) if not image.isNull() else QIcon()
        while len(self._thumbs) > CACHE_SIZE:
            self._thumbs.popitem(last=False)
        row = self._row.get(name)
        if row is not None:
            idx = self.index(row)
            self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])

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

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid():
            return None
        rec = self._records[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            held_out = "  ·  validation" if rec.name in self._marked else ""
            return f"{rec.name}    ·  {STATUS_TEXT[rec.status]}{held_out}"
        if role == Qt.ItemDataRole.ForegroundRole:
            return QBrush(STATUS_COLOR[rec.status])
        if role == Qt.ItemDataRole.ToolTipRole:
            conf = "" if rec.confidence is None else f"\nmean confidence {rec.confidence:.2f}"
            who = f"\nchanged by {rec.updated_by}" if rec.updated_by else ""
            return f"{rec.name}\n{STATUS_TEXT[rec.status]}{conf}{who}"
        if role == self.NameRole:
            return rec.name
        if role == Qt.ItemDataRole.DecorationRole:
            icon = self._thumbs.get(rec.name)
            if icon is None and self._path_of is not None:  # a plain path join: no DB query
                self.loader.request(rec.name, self._path_of(rec.name))
            return icon
        return None


class ImageListPanel(QWidget):
    """Filter by status and pick an image; emits ``imageChosen(name)``."""

    imageChosen = Signal(str)  # noqa: N815 - Qt naming

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
        self.model = ImageListModel()
        self.view.setModel(self.model)
        self.count = QLabel()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.filter)
        layout.addWidget(self.view)
        layout.addWidget(self.count)
        self.view.selectionModel().currentChanged.connect(self._current_changed)
        self._all: list[ImageRecord] = []
        self.filter.currentIndexChanged.connect(self._refilter)

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

    def show_all(self) -> None:
        """Clear the status filter."""
        self.filter.setCurrentIndex(0)

    def update_record(self, record: ImageRecord) -> None:
        for i, r in enumerate(self._all):
            if r.name == record.name:
                self._all[i] = record
                break
        self.model.update_record(record)

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

    def step(self, delta: int) -> None:
        """Go to the next (+1) or previous (-1) image of the filtered list."""
        n = self.model.rowCount()
        if n == 0:
            return
        row = self.view.currentIndex().row()
        row = 0 if row < 0 else min(max(row + delta, 0), n - 1)
        self.view.setCurrentIndex(self.model.index(row))

    def _current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            self.imageChosen.emit(current.data(ImageListModel.NameRole))
