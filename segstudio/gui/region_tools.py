"""Fill and Box → GrabCut in the window: what they will do before, and what they did after.

**Fill** covers the connected region under the cursor: of the image's
colours (within a tolerance) or of the prediction's classes, and never beyond
the clicked pixel's label (an unlabelled click fills unlabelled pixels only).
While the fill tool is chosen, the region a click would fill is shown under
the cursor (the class colour with a bright edge); it is computed on the GUI
thread, at most once per :data:`PREVIEW_MS` (a region of half a 4000 x 3000
image takes about 15 ms), and reused by the click. "By" and the tolerance sit
in the status bar while the tool is chosen; ``[`` and ``]`` change the
tolerance then.

**GrabCut** runs in a worker and says what it found (pixels, share of the
box, or nothing). Then drags with the GrabCut tool refine it: plain drags
mark what it missed, Shift+drags what it took wrongly, and GrabCut runs again
from its own mask; each refinement is one undo step that replaces the last
result. Enter or Esc (or another tool, image or edit) ends the refining, and
the next drag draws a new box.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from PySide6.QtCore import QEvent, QObject, QPointF, Qt, QTimer
from PySide6.QtGui import QColor, QImage, QKeyEvent, QPainterPath, QPen, QPixmap, qRgba
from PySide6.QtWidgets import (
    QComboBox,
    QGraphicsPathItem,
    QGraphicsPixmapItem,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QWidget,
)

from segstudio.core.grabcut import GrabCut, grabcut_refine, grabcut_start
from segstudio.core.tools import DEFAULT_FILL_TOLERANCE, Placed, brush_segment
from segstudio.gui.canvas import Layer, Tool
from segstudio.gui.jobs import WorkerSet, error_text
from segstudio.gui.ui import Ui
from segstudio.session.document import FillBy, ImageDocument, PlacedAgain

log = logging.getLogger(__name__)

#: The fill preview follows the cursor at most this often.
PREVIEW_MS = 30
#: A preview larger than this is drawn from every n-th pixel (the screen shows no more).
PREVIEW_MAX_PIXELS = 4_000_000
#: How long closing waits for GrabCut.
WAIT_S = 10.0
#: The choices of "Fill by": the data is a FillBy value, or None for "as shown".
FILL_BY = (
    ("auto", None),  # the prediction if shown, else colour
    ("colour", FillBy.COLOUR.value),
    ("prediction", FillBy.PREDICTION.value),
)


class RegionPreview(QGraphicsPixmapItem):
    """A region drawn over the image: the class colour, see-through, with a bright edge."""

    def __init__(self) -> None:
        super().__init__()
        self.setZValue(5)  # over the map layers, under the brush outline
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.setTransformationMode(Qt.TransformationMode.FastTransformation)
        self.setVisible(False)

    def show_region(self, placed: Placed | None, color: tuple[int, int, int]) -> None:
        if placed is None:
            self.setVisible(False)
            return
        mask = placed.mask
        step = max(1, math.ceil(math.sqrt(mask.size / PREVIEW_MAX_PIXELS)))
        inside = np.ascontiguousarray(mask[::step, ::step]).view(np.uint8)
        kernel = np.ones((3, 3), np.uint8)
        eroded = cv2.erode(inside, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
        values = np.ascontiguousarray(inside + (inside - eroded))  # 0 out, 1 in, 2 edge
        h, w = values.shape
        image = QImage(values.data, w, h, w, QImage.Format.Format_Indexed8)
        image.setColorTable([qRgba(0, 0, 0, 0), qRgba(*color, 150), qRgba(255, 235, 60, 255)])
        self.setPixmap(QPixmap.fromImage(image))  # converts: the array may go
        self.setPos(placed.x0, placed.y0)
        self.setScale(step)
        self.setVisible(True)


class FillTool(QObject):
    """The fill tool's options, its preview under the cursor, and its click."""

    def __init__(
        self,
        ui: Ui,
        doc: Callable[[], ImageDocument | None],
        lock: Callable[[], bool],
        edited: Callable[[], None],
    ) -> None:
        super().__init__(ui.window)
        self.ui, self._doc, self._lock, self._edited = ui, doc, lock, edited
        self.preview = RegionPreview()
        ui.canvas.scene().addItem(self.preview)
        self.by = QComboBox()
        self.by.setObjectName("fillBy")
        for text, data in FILL_BY:
            self.by.addItem(text, data)
        self.by.setToolTip(
            "What a fill follows: the image's colours or the model's prediction "
            "(auto: the prediction when it is shown, else the colours)"
        )
        self.tolerance = QSpinBox()
        self.tolerance.setObjectName("fillTolerance")
        self.tolerance.setRange(0, 255)
        self.tolerance.setValue(DEFAULT_FILL_TOLERANCE)
        self.tolerance.setToolTip(
            "How far a colour may be from the clicked pixel's, per channel (0-255); [ and ]"
        )
        self.options = QWidget()
        self.options.setObjectName("fillOptions")
        row = QHBoxLayout(self.options)
        row.setContentsMargins(0, 0, 0, 0)
        for widget in (QLabel("Fill by"), self.by, QLabel("tolerance"), self.tolerance):
            row.addWidget(widget)
        self.options.setVisible(False)
        ui.status.insertPermanentWidget(0, self.options)
        self._hover: tuple[int, int] | None = None
        self._cache: tuple[tuple[object, ...], Placed | None] | None = None
        #: Milliseconds the last region took (shown in the log; a benchmark measures it).
        self.last_ms = 0.0
        self._timer = QTimer(self, singleShot=True, interval=PREVIEW_MS)
        self._timer.timeout.connect(self._show_preview)
        self.by.currentIndexChanged.connect(self.refresh)
        self.tolerance.valueChanged.connect(self.refresh)
        ui.canvas.cursorMoved.connect(self.hover)

    @property
    def active(self) -> bool:
        return self.ui.canvas.tool is Tool.FILL

    def tool_changed(self, tool: Tool) -> None:
        """``tool`` is chosen: the options show with the fill tool, the preview goes."""
        self.options.setVisible(tool is Tool.FILL)
        self.clear()

    def fill_by(self, doc: ImageDocument) -> tuple[FillBy, str | None]:
        """What the fill follows now, and a note when it cannot follow what was chosen."""
        data = self.by.currentData()
        if data is None:  # as shown: the prediction when it is on screen
            shown = self.ui.canvas.layers[Layer.PREDICTION].isVisible()
            wanted = FillBy.PREDICTION if shown else FillBy.COLOUR
        else:
            wanted = FillBy(data)
        if wanted is FillBy.PREDICTION and doc.prediction is None:
            if data is None:
                return FillBy.COLOUR, None
            return FillBy.COLOUR, "no prediction for this image yet: filled by colour"
        return wanted, None

    def region(self, doc: ImageDocument, x: int, y: int) -> Placed | None:
        """Where a click at (x, y) fills (the last preview's when nothing changed since)."""
        by, _ = self.fill_by(doc)
        key = (doc, doc.changes, id(doc.prediction), x, y, by, self.tolerance.value())
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        t0 = time.perf_counter()
        placed = doc.fill_region(x, y, by, self.tolerance.value())
        self.last_ms = (time.perf_counter() - t0) * 1000
        log.debug("fill region at (%d, %d): %.1f ms", x, y, self.last_ms)
        self._cache = (key, placed)
        return placed

    def hover(self, x: int, y: int) -> None:
        if not self.active or self._doc() is None or x < 0:
            self.clear()
            return
        self._hover = (x, y)
        if not self._timer.isActive():  # at most one region per PREVIEW_MS while moving
            self._timer.start()

    def refresh(self) -> None:
        """The labels, the prediction or an option changed: preview again."""
        self._cache = None
        if self._hover is not None and self.active:
            self._timer.start()

    def clear(self) -> None:
        self._hover = None
        self._timer.stop()
        self.preview.setVisible(False)

    def _show_preview(self) -> None:
        doc = self._doc()
        if doc is None or self._hover is None or not self.active:
            self.preview.setVisible(False)
            return
        x, y = self._hover
        if int(doc.labels[y, x]) == self.ui.palette.current():
            self.preview.setVisible(False)  # a click there would change nothing
            return
        self.preview.show_region(self.region(doc, x, y), self._colour())

    def _colour(self) -> tuple[int, int, int]:
        ls = self.ui.palette.labelset
        if ls is None or not ls.num_classes:
            return (255, 255, 255)
        r, g, b = ls.palette()[min(self.ui.palette.current(), ls.num_classes - 1)]
        return int(r), int(g), int(b)

    def click(self, x: int, y: int) -> None:
        """Fill the region under (x, y) with the chosen class, and say how much."""
        doc = self._doc()
        if doc is None:
            return
        _, note = self.fill_by(doc)
        placed = self.region(doc, x, y)
        before = doc.changes
        cls = self.ui.palette.current()
        doc.place(placed, cls, "Fill", lock=self._lock())
        ls = self.ui.palette.labelset
        name = ls.names[cls] if ls is not None and cls < ls.num_classes else f"class {cls}"
        if doc.changes == before:
            text = f"Nothing to fill there: the region is {name} already"
            if self._lock():
                text = "Nothing filled: only unlabelled pixels may change (L unlocks)"
        else:
            n = 0 if placed is None else int(np.count_nonzero(placed.mask))
            text = f"Filled {n:,} pixels with {name}"
        self.ui.say(text + (f" ({note})" if note else ""), 5000)
        self._edited()

    def nudge(self, up: bool) -> None:
        """``]`` and ``[`` with the fill tool: a wider or narrower tolerance."""
        t = self.tolerance.value()
        self.tolerance.setValue(t + max(1, t // 4) if up else t - max(1, t // 5))
        self.ui.say(f"Fill tolerance {self.tolerance.value()}", 2000)


@dataclass
class _Refining:
    """A GrabCut result the user is refining."""

    doc: ImageDocument
    version: int  # the labels' class numbering
    cls: int
    lock: bool
    cut: GrabCut
    placed: PlacedAgain


class GrabCutTool(QObject):
    """Box → GrabCut, its report, and its refinement with strokes."""

    def __init__(
        self,
        ui: Ui,
        doc: Callable[[], ImageDocument | None],
        lock: Callable[[], bool],
        edited: Callable[[], None],
    ) -> None:
        super().__init__(ui.window)
        self.ui, self._doc, self._lock, self._edited = ui, doc, lock, edited
        self.workers = WorkerSet(self)
        self.refining: _Refining | None = None
        self._stroke: list[Placed] = []
        self._foreground = True
        self._pending: list[tuple[Placed, bool]] = []  # strokes waiting for the worker
        self.strokes_item = QGraphicsPathItem()
        self.strokes_item.setZValue(11)
        ui.canvas.scene().addItem(self.strokes_item)
        self._paths: list[tuple[QPainterPath, bool]] = []
        ui.canvas.installEventFilter(self)  # Enter / Esc end the refining

    # -- the box -------------------------------------------------------------------------

    def box(self, x0: int, y0: int, x1: int, y1: int) -> None:
        """A box was drawn: GrabCut runs in a worker."""
        doc = self._doc()
        if doc is None:
            return
        self.end()
        if self.workers.busy:
            self.ui.say("GrabCut is still working on the last box", 4000)
            return
        cls, version, lock = self.ui.palette.current(), doc.labelset_version, self._lock()
        self.ui.say("GrabCut…")
        self.workers.start(
            grabcut_start,
            doc.image.rgb,
            x0,
            y0,
            x1,
            y1,
            returned=lambda cut: self._found(doc, version, cls, lock, cut),
            errored=self._failed,
        )

    def _current(self, doc: ImageDocument, version: int) -> bool:
        """Whether a result for ``doc`` still applies; if not, the "GrabCut…" goes."""
        if self._doc() is doc and doc.labelset_version == version:
            return True
        if self.ui.status.currentMessage().startswith("GrabCut"):
            self.ui.status.clearMessage()
        return False

    def _found(
        self, doc: ImageDocument, version: int, cls: int, lock: bool, cut: GrabCut | None
    ) -> None:
        if not self._current(doc, version):
            return  # the user moved on, or the classes were renumbered: dropped
        if cut is None:
            self.ui.say(
                "GrabCut needs a box of at least 5 x 5 pixels with some background around "
                "the object inside the image",
                8000,
            )
            return
        placed = doc.place_again(cut.region, cls, "Box → GrabCut", cut.crop, lock=lock)
        self.refining = _Refining(doc, version, cls, lock, cut, placed)
        self.ui.canvas.grabcut_strokes = True
        self._edited()
        self._report(cut, None)

    def _failed(self, exc: BaseException) -> None:
        self.end()
        self.ui.say(f"GrabCut failed: {error_text(exc)}", 8000)

    def _report(self, cut: GrabCut, before: int | None) -> None:
        ls = self.ui.palette.labelset
        cls = self.refining.cls if self.refining is not None else 0
        name = ls.names[cls] if ls is not None and cls < ls.num_classes else f"class {cls}"
        how = "Drag over what it missed, Shift+drag over what it took wrongly; Enter when done."
        n = cut.pixels
        if n == 0:
            self.ui.say(
                "GrabCut found no object there. Drag over the object to show it "
                "(Shift+drag: background), or press Enter and draw another box.",
                30000,
            )
            return
        share = 100.0 * n / max(1, cut.box.height * cut.box.width)
        change = "" if before is None else f" ({n - before:+,})"
        self.ui.say(
            f"GrabCut: {n:,} pixels of {name}{change}, {share:.0f}% of the box. {how}", 30000
        )

    # -- refining ------------------------------------------------------------------------

    def stroke_started(self) -> None:
        shift = bool(self.ui.canvas.press_modifiers & Qt.KeyboardModifier.ShiftModifier)
        self._foreground = not shift
        self._stroke = []
        self._paths.append((QPainterPath(), self._foreground))

    def stroke_moved(self, x0: float, y0: float, x1: float, y1: float) -> None:
        refining, doc = self.refining, self._doc()
        if refining is None or doc is not refining.doc:
            return
        r = self.ui.canvas.brush_radius
        placed = brush_segment(doc.labels.shape, (x0, y0), (x1, y1), r)
        if placed is not None:
            self._stroke.append(placed)
        path, _ = self._paths[-1]
        if path.elementCount() == 0:
            path.moveTo(QPointF(x0 + 0.5, y0 + 0.5))
        path.lineTo(QPointF(x1 + 0.5, y1 + 0.5))
        self._draw_strokes()

    def stroke_finished(self) -> None:
        self._pending += [(p, self._foreground) for p in self._stroke]
        self._stroke = []
        self._refine()

    def _draw_strokes(self) -> None:
        # one path item: the last stroke's colour; earlier ones stay as they were drawn
        whole = QPainterPath()
        for path, _ in self._paths:
            whole.addPath(path)
        fg = self._paths[-1][1] if self._paths else True
        pen = QPen(QColor(60, 220, 90, 170) if fg else QColor(235, 60, 60, 170))
        pen.setWidthF(2 * self.ui.canvas.brush_radius)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
        self.strokes_item.setPen(pen)
        self.strokes_item.setPath(whole)

    def _refine(self) -> None:
        refining = self.refining
        if refining is None or not self._pending or self.workers.busy:
            return
        strokes, self._pending = self._pending, []
        self.ui.say("GrabCut: refining…")
        self.workers.start(
            grabcut_refine,
            refining.cut,
            strokes,
            returned=lambda cut, r=refining: self._refined(r, cut),
            errored=self._failed,
            finished=self._refine,  # strokes drawn meanwhile
        )

    def _refined(self, refining: _Refining, cut: GrabCut) -> None:
        if self.refining is not refining or not self._current(refining.doc, refining.version):
            return
        before = refining.cut.pixels
        refining.placed = refining.doc.place_again(
            cut.region,
            refining.cls,
            "GrabCut refinement",
            cut.crop,
            refining.placed,
            lock=refining.lock,
        )
        refining.cut = cut
        if not self._pending and not self._stroke:
            self._paths.clear()
            self.strokes_item.setPath(QPainterPath())
        self._edited()
        self._report(cut, before)

    def end(self) -> None:
        """Stop refining: the next drag draws a new box."""
        self.refining = None
        self._pending, self._stroke = [], []
        self._paths.clear()
        self.strokes_item.setPath(QPainterPath())
        self.ui.canvas.grabcut_strokes = False

    def close(self) -> None:
        self.end()
        self.workers.wait(WAIT_S)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        if (
            self.refining is not None
            and event.type() == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Escape)
        ):
            self.end()
            self.ui.say("GrabCut done: drag a box for the next object", 4000)
        return False  # the canvas sees the key too
