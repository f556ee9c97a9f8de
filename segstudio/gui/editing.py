"""Editing the open image: loading it, the canvas's tools, undo, saving, cursor info.

The canvas reports gestures; each becomes one of the open
:class:`~segstudio.session.document.ImageDocument`'s edit operations (a
stroke, a fill, a polygon, a placed GrabCut region, accepting the
prediction), so every tool goes through the one edit path and a whole drag is
one undo step. The document's events drive the canvas: ``editor.changed``
repaints the changed rectangle, ``predicted`` shows a new prediction, and
``saved`` (from the saver's thread, queued here) refreshes the image list.
Images load in a worker, so the one on screen stays editable meanwhile.
Edits are saved after a pause, at least every few seconds while the user
keeps painting (also in the middle of a long drag: the part drawn so far),
and when the image changes. What the document has to tell the user (labels
kept aside, classes renumbered) goes to the status bar.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QLabel, QMessageBox

from segstudio.core.errors import SegStudioError
from segstudio.core.labelset import UNLABELED
from segstudio.core.tools import Placed, grabcut_region
from segstudio.gui.canvas import Tool
from segstudio.gui.jobs import WorkerSet, error_text
from segstudio.gui.ui import Ui
from segstudio.io.project import ImageStatus, Project
from segstudio.session.document import ImageDocument, Saver, StrokeKind

#: Save after this many idle seconds following an edit ...
AUTOSAVE_IDLE_MS = 1500
#: ... and at least this often while the user keeps painting.
AUTOSAVE_MAX_MS = 5000
#: Paging through images quickly loads only the one the user stops at.
LOAD_DELAY_MS = 120
#: How long closing waits for image loads and GrabCut to end.
WAIT_S = 10.0

STROKES = {
    Tool.BRUSH: StrokeKind.PAINT,
    Tool.ERASER: StrokeKind.ERASE,
    Tool.ACCEPT: StrokeKind.ACCEPT,
}


class EditingController(QObject):
    """The open project's open image, and everything that edits or saves it.

    Signals
    -------
    docShown(doc)
        A newly loaded image is on screen.
    edited(doc)
        An edit, undo or redo finished (not mid-stroke).
    changed()
        What the actions depend on changed (the image, its history, its prediction).
    labelsSaved(name), saveFailed(name, message)
        Emitted on the saver's thread; queued to the GUI thread.
    """

    docShown = Signal(object)  # noqa: N815 - Qt naming
    edited = Signal(object)
    changed = Signal()
    labelsSaved = Signal(str)  # noqa: N815
    saveFailed = Signal(str, str)  # noqa: N815

    def __init__(self, ui: Ui) -> None:
        super().__init__(ui.window)
        self.ui = ui
        self.project: Project | None = None
        self.doc: ImageDocument | None = None
        self.saver = Saver(on_error=self.saveFailed.emit)
        self.loaders = WorkerSet(self)  # image loads
        self.side = WorkerSet(self)  # GrabCut
        self._loading: str | None = None  # the image being opened
        #: A message for the status bar once the image is shown (opening clears it).
        self._notice: str | None = None
        self._load_timer = QTimer(self, singleShot=True, interval=LOAD_DELAY_MS)
        self._load_timer.timeout.connect(self._start_load)
        self.idle_timer = QTimer(self, singleShot=True, interval=AUTOSAVE_IDLE_MS)
        self.idle_timer.timeout.connect(self.autosave)
        self.max_timer = QTimer(self, interval=AUTOSAVE_MAX_MS)
        self.max_timer.timeout.connect(self.autosave)
        self.max_timer.start()
        self.pos_label = QLabel()
        self.pos_label.setObjectName("cursorInfo")
        self.pos_label.setMinimumWidth(420)
        ui.status.addWidget(self.pos_label, 1)

        c = ui.canvas
        c.cursorMoved.connect(self.show_cursor_info)
        c.strokeStarted.connect(self._stroke_started)
        c.strokeMoved.connect(self._stroke_moved)
        c.strokeFinished.connect(self._stroke_finished)
        c.clicked.connect(self._clicked)
        c.polygonFinished.connect(self._polygon_finished)
        c.boxFinished.connect(self._box_finished)
        ui.images.imageChosen.connect(self.show_image)
        ui.palette.classChosen.connect(lambda _i: self.show_cursor_info(-1, -1))
        self.labelsSaved.connect(self.refresh_record)
        self.saveFailed.connect(self._save_failed)
        for name, handler in {
            "actionSave": self.save_now,
            "actionUndo": self.undo,
            "actionRedo": self.redo,
            "actionAcceptPrediction": self.accept_prediction,
            "actionBrushBigger": lambda: self.resize_brush(1.25),
            "actionBrushSmaller": lambda: self.resize_brush(0.8),
            "actionMarkReviewed": self.toggle_reviewed,
            "actionLeastConfident": self.go_least_confident,
        }.items():
            ui.action(name).triggered.connect(lambda _c=False, h=handler: h())

    # -- the project and the open image ------------------------------------------------------

    def open(self, project: Project) -> None:
        self.project = project

    def stop_loading(self) -> None:
        """Drop a load under way (its result is ignored when it arrives)."""
        self._loading = None
        self._load_timer.stop()

    def close(self) -> None:
        """Before the project closes: let loads and GrabCut end, save everything and wait
        (telling the user what could not be saved), and show nothing."""
        self.stop_loading()
        self.loaders.wait(WAIT_S)
        self.side.wait(WAIT_S)
        failed = self.flush_saves()
        if failed:
            QMessageBox.critical(
                self.ui.window,
                "Save",
                "These images could not be saved and keep their last saved labels: "
                + ", ".join(failed),
            )
            self.saver.failed.clear()
        if self.doc is not None:
            self._detach(self.doc)
        self.doc, self.project, self._notice = None, None, None
        self.ui.canvas.set_image(None)
        self.ui.canvas.set_labels(None)
        self.ui.canvas.set_prediction(None, None)

    def shutdown(self) -> None:
        """The window closes: no more loads or saves."""
        self.loaders.wait(WAIT_S)
        self.saver.wait()
        self.saver.shutdown()

    def set_notice(self, text: str | None) -> None:
        """Say ``text`` in the status bar now, and again once the next image is shown."""
        self._notice = text
        if text is not None:
            self.ui.say(text, 30000)

    def show_image(self, name: str) -> None:
        """Open ``name``: its pixels, labels and prediction load in a worker.

        The current image stays on screen (and editable) until the new one is
        ready; a result for an image the user has already left is dropped.
        """
        if self.project is None:
            return
        if self.doc is not None and self.doc.name == name:
            self.stop_loading()  # back to the image on screen: drop a load under way
            return
        self.save()
        self._loading = name
        self.ui.say(f"Opening {name}…")
        self._load_timer.start()

    def _start_load(self) -> None:
        name = self._loading
        if name is None or self.project is None:
            return
        self.loaders.start(
            ImageDocument,
            self.project,
            name,
            self.saver,
            returned=self._image_loaded,
            errored=lambda exc, n=name: self._image_failed(n, exc),
        )

    def _image_loaded(self, doc: ImageDocument) -> None:
        project = self.project
        if doc.notice is not None and project is doc.project:
            self.refresh_record(doc.name)  # e.g. its labels were kept aside: status changed
        if (
            doc.name != self._loading
            or project is not doc.project
            or doc.labelset_version != project.labelset_version
        ):
            if doc.notice is not None and project is doc.project:
                self.ui.say(doc.notice, 30000)  # the user moved on, but must still know
            return  # stale: the user moved on, or the classes were renumbered meanwhile
        self._loading = None
        self.save()  # edits made to the previous image while this one loaded
        if self.doc is not None:
            self._detach(self.doc)
        self.doc = doc
        doc.editor.changed.connect(self._labels_changed)
        doc.editor.history_changed.connect(self._history_changed)
        doc.predicted.connect(self._show_prediction)
        doc.noticed.connect(self._doc_notice)
        doc.saved.connect(self._saved)  # kept: a save may finish after the next image shows
        canvas = self.ui.canvas
        canvas.set_image(doc.image.rgb)
        canvas.set_labels(doc.labels)
        self._show_prediction()
        canvas.fit()
        project.set_setting("last_image", doc.name)
        self.ui.images.select(doc.name, emit=False)
        if doc.notice is not None:  # e.g. its labels were kept aside: the user must know
            self._notice = doc.notice if self._notice is None else f"{self._notice}  {doc.notice}"
        if self._notice is not None:  # said while opening: "Opening …" replaced it
            self.ui.say(self._notice, 30000)
            self._notice = None
        else:
            self.ui.status.clearMessage()
        self.changed.emit()
        self.docShown.emit(doc)

    def _detach(self, doc: ImageDocument) -> None:
        doc.editor.changed.disconnect(self._labels_changed)
        doc.editor.history_changed.disconnect(self._history_changed)
        doc.predicted.disconnect(self._show_prediction)
        doc.noticed.disconnect(self._doc_notice)

    def _doc_notice(self, text: str) -> None:
        """The open document says something the user must see (it saves on this thread)."""
        self.ui.say(text, 30000)
        project = self.project
        if project is not None and self.ui.palette.labelset != project.labelset:
            self.ui.palette.set_labelset(project.labelset)  # classes changed elsewhere

    def _image_failed(self, name: str, exc: BaseException) -> None:
        if name != self._loading:
            return
        self._loading = None
        msg = error_text(exc)
        self.ui.say(msg, 15000)
        QMessageBox.warning(self.ui.window, "Open image", msg)
        if self.doc is not None:  # keep the list on the image that is shown
            self.ui.images.select(self.doc.name, emit=False)

    def _labels_changed(self, rect: Any) -> None:
        self.ui.canvas.update_labels(rect.y0, rect.x0, rect.y1, rect.x1)

    def _history_changed(self) -> None:
        self.changed.emit()
        doc = self.doc
        if doc is not None and not doc.stroking:
            self.edited.emit(doc)

    def _show_prediction(self) -> None:
        pred = self.doc.prediction if self.doc is not None else None
        self.ui.canvas.set_prediction(
            None if pred is None else pred.labels, None if pred is None else pred.confidence
        )
        self.changed.emit()

    def set_prediction(self, name: str, labels: np.ndarray, confidence: np.ndarray) -> None:
        """A prediction just made and stored for ``name``: shown if that image is open."""
        self.refresh_record(name)
        if self.doc is not None and self.doc.name == name:
            self.doc.set_prediction(labels, confidence)

    def prediction_stored(self, name: str) -> None:
        """A prediction of ``name`` was stored: shown (read back) if that image is open."""
        self.refresh_record(name)
        if self.doc is not None and self.doc.name == name:
            self.doc.reload_prediction()

    def reload_labels(self) -> None:
        """Show the open image's stored labels again (they were imported)."""
        if self.doc is not None:
            self.doc.reload_labels()
            self.ui.canvas.set_labels(self.doc.labels)

    def refresh_record(self, name: str) -> None:
        if self.project is not None:
            with contextlib.suppress(SegStudioError):  # the image may have vanished
                self.ui.images.update_record(self.project.record(name))

    # -- tools -------------------------------------------------------------------------------

    @property
    def lock_unlabeled(self) -> bool:
        return self.ui.checked("actionLockUnlabeled")

    def resize_brush(self, factor: float) -> None:
        canvas = self.ui.canvas
        canvas.set_brush_radius(canvas.brush_radius * factor)
        self.ui.say(f"Brush radius {canvas.brush_radius:.1f} px", 2000)

    def _stroke_started(self) -> None:
        if self.doc is not None:
            kind = STROKES.get(self.ui.canvas.tool, StrokeKind.PAINT)
            self.doc.begin_stroke(kind, self.ui.palette.current(), lock=self.lock_unlabeled)

    def _stroke_moved(self, x0: float, y0: float, x1: float, y1: float) -> None:
        if self.doc is not None:
            self.doc.stroke_to(x0, y0, x1, y1, self.ui.canvas.brush_radius)

    def _stroke_finished(self) -> None:
        if self.doc is not None and self.doc.end_stroke():
            self.idle_timer.start()

    def _clicked(self, x: int, y: int) -> None:
        doc = self.doc
        if doc is None:
            return
        if self.ui.canvas.tool is Tool.EYEDROPPER:
            value = doc.pick(x, y)
            if value is not None:
                self.ui.palette.choose(value)
            return
        doc.fill(x, y, self.ui.palette.current(), lock=self.lock_unlabeled)
        self.idle_timer.start()

    def _polygon_finished(self, points: list[tuple[float, float]]) -> None:
        if self.doc is not None:
            self.doc.polygon(points, self.ui.palette.current(), lock=self.lock_unlabeled)
            self.idle_timer.start()

    def _box_finished(self, x0: int, y0: int, x1: int, y1: int) -> None:
        """GrabCut runs in a worker (it can take a second on a big box)."""
        doc = self.doc
        if doc is None:
            return
        cls, version = self.ui.palette.current(), doc.labelset_version

        def done(placed: Placed | None) -> None:
            if self.doc is not doc or doc.labelset_version != version:
                return  # the user moved on, or the classes were renumbered; drop it
            if placed is None:
                self.ui.say("GrabCut found no object in that box", 5000)
                return
            doc.place(placed, cls, "Box → GrabCut", lock=self.lock_unlabeled)
            self.idle_timer.start()

        self.ui.say("GrabCut…")
        self.side.start(
            grabcut_region,
            doc.image.rgb,
            x0,
            y0,
            x1,
            y1,
            returned=done,
            errored=lambda e: self.ui.say(f"GrabCut failed: {e}", 8000),
        )

    def undo(self) -> None:
        if self.doc is not None and self.doc.editor.undo() is not None:
            self.idle_timer.start()

    def redo(self) -> None:
        if self.doc is not None and self.doc.editor.redo() is not None:
            self.idle_timer.start()

    def accept_prediction(self) -> None:
        """Copy the prediction into every unlabeled pixel: one undo step."""
        if self.doc is not None and self.doc.accept_prediction():
            self.idle_timer.start()

    def show_cursor_info(self, x: int, y: int) -> None:
        doc, ls = self.doc, self.ui.palette.labelset  # the palette's copy: no project lock
        current = ""
        if ls is not None and ls.num_classes:
            current = f"painting: {ls.names[min(self.ui.palette.current(), ls.num_classes - 1)]}"
        if doc is None or x < 0 or ls is None:
            self.pos_label.setText(current)
            return

        def name(v: int) -> str:
            return "unlabeled" if v == UNLABELED or v >= ls.num_classes else ls.names[v]

        parts = [f"x {x}, y {y}", f"label: {name(int(doc.labels[y, x]))}"]
        if doc.prediction is not None:
            conf = doc.prediction.confidence[y, x] / 255
            parts.append(f"predicted: {name(int(doc.prediction.labels[y, x]))} ({conf:.2f})")
        if doc.image.bit_depth > 8:
            parts.append(f"value: {doc.image.raw[y, x]}")
        self.pos_label.setText("   ·   ".join([*parts, current]))

    # -- saving ------------------------------------------------------------------------------

    def save(self) -> None:
        """Hand the open image's unsaved edits to the saver (ending a stroke under way)."""
        if self.doc is not None:
            if self.doc.stroking:
                self.ui.canvas.cancel_gesture()
            self.doc.save()

    def _saved(self, name: str) -> None:  # the saver's thread
        self.labelsSaved.emit(name)

    def autosave(self) -> None:
        """Save unsaved edits; retry failed saves.

        In the middle of a stroke the labels are saved as they are and the stroke
        goes on (one undo step): a crash during a long drag loses at most the
        last autosave interval of it.
        """
        if self.saver.failed:
            self.saver.retry_failed()
        doc = self.doc
        if doc is None or not doc.unsaved:
            return
        if doc.stroking:
            doc.save()  # not self.save(): that would end the drag
        else:
            self.save()

    def _save_failed(self, name: str, message: str) -> None:
        self.ui.say(
            f"Could not save {name}: {message}. Your labels are kept and saving is retried.",
            15000,
        )

    def flush_saves(self) -> list[str]:
        """Save the open image, retry failed writes and wait; the images still unsaved."""
        self.save()
        self.saver.retry_failed()
        self.saver.wait()
        return sorted(self.saver.failed)

    def save_now(self) -> bool:
        """Save now and wait; False (after telling the user) when something failed."""
        failed = self.flush_saves()
        if failed:
            QMessageBox.critical(
                self.ui.window,
                "Save",
                "Saving failed for " + ", ".join(failed) + "; "
                "the labels stay in memory and saving is retried.",
            )
            return False
        self.ui.say("Saved", 3000)
        return True

    def toggle_reviewed(self) -> None:
        doc, project = self.doc, self.project
        if doc is None or project is None:
            return
        if not self.save_now():
            return  # never mark reviewed what is not on disk
        status = project.record(doc.name).status
        new = ImageStatus.IN_PROGRESS if status is ImageStatus.REVIEWED else ImageStatus.REVIEWED
        project.set_status(doc.name, new)
        self.refresh_record(doc.name)
        self.ui.say(f"{doc.name}: {new.value.replace('_', ' ')}", 4000)

    def go_least_confident(self) -> None:
        if self.project is None:
            return
        name = self.project.least_confident()
        if name is None:
            self.ui.say("No predicted image to review: predict first", 6000)
            return
        self.ui.images.show_all()
        self.ui.images.select(name)
