"""Editing the open image: loading it, the canvas's tools, undo, saving, cursor info.

The canvas reports gestures; each becomes one of the open
:class:`~segstudio.session.document.ImageDocument`'s edit operations (a
stroke, a fill, a polygon, a placed GrabCut region, accepting the
prediction), so every tool goes through the one edit path and a whole drag is
one undo step. The document's events drive the canvas: ``editor.changed``
repaints the changed rectangle, ``predicted`` shows a new prediction, and
``saved`` (from the saver's thread, queued here) refreshes the image list.
Images load in a worker, so the one on screen stays editable meanwhile; a
file that cannot be read is marked in the image list and next/previous pass
over it (a status-bar note, never a dialog). Edits are saved after a pause,
at least every few seconds while the user keeps painting (also in the middle
of a long drag: the part drawn so far), and when the image changes; the view
settings (class, brush, tool, ...) go with the autosave, on the saver's
thread. What the document has to tell the user (labels kept aside, classes
renumbered) goes to the status bar.

Nothing is silently not done: Accept prediction pressed before the prediction
arrived says so and accepts it when it comes (or says why none will come);
marking an image reviewed while pixels are unlabelled asks first; editing a
reviewed image makes it "in progress" again and says so. Fill and GrabCut
live in :mod:`~segstudio.gui.region_tools`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QLabel, QMessageBox

from segstudio.gui.actions import TOOL_ACTIONS
from segstudio.gui.canvas import Tool
from segstudio.gui.jobs import WorkerSet, error_text
from segstudio.gui.region_tools import FillTool, GrabCutTool
from segstudio.gui.review import Review
from segstudio.gui.status_bar import cursor_text
from segstudio.gui.ui import Ui
from segstudio.io.project import ImageRecord, ImageStatus, Project
from segstudio.session.cache import ProjectCache
from segstudio.session.document import ImageDocument, Saver, StrokeKind
from segstudio.session.loading import DocumentLoads

log = logging.getLogger(__name__)

#: Save after this many idle seconds following an edit ...
AUTOSAVE_IDLE_MS = 1500
#: ... and at least this often while the user keeps painting.
AUTOSAVE_MAX_MS = 5000
#: Paging through images quickly loads only the one the user stops at.
LOAD_DELAY_MS = 120
#: How long closing waits for an image load in the project's part (never for a decode).
WAIT_S = 10.0
#: The project setting the view settings are kept in.
VIEW_SETTING = "view"

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
    recordsChanged(names)
        The open project's records changed (a frozenset of image names, or None: any);
        emitted from the thread that wrote, queued to the GUI thread, which reads the new
        records from :attr:`cache` (never from the store).
    """

    docShown = Signal(object)  # noqa: N815 - Qt naming
    edited = Signal(object)
    changed = Signal()
    labelsSaved = Signal(str)  # noqa: N815
    saveFailed = Signal(str, str)  # noqa: N815
    recordsChanged = Signal(object)  # noqa: N815

    def __init__(self, ui: Ui) -> None:
        super().__init__(ui.window)
        self.ui = ui
        self.project: Project | None = None
        #: The open project's records in memory, current after every write: what the
        #: GUI thread reads instead of the store (which can wait behind a worker's write).
        self.cache: ProjectCache | None = None
        self.doc: ImageDocument | None = None
        self.saver = Saver(on_error=self.saveFailed.emit)
        self.loaders = WorkerSet(self)  # image loads, run by ``loads`` (the open project's)
        self.loads: DocumentLoads | None = None
        self.fill = FillTool(ui, lambda: self.doc, lambda: self.lock_unlabeled, self._edited_now)
        self.grabcut = GrabCutTool(
            ui, lambda: self.doc, lambda: self.lock_unlabeled, self._edited_now
        )
        #: The window's view settings, saved with the autosave (the window sets it).
        self.view_state: Callable[[], dict[str, object]] | None = None
        self._view_saved: dict[str, object] | None = None
        #: Makes sure a prediction of the document is coming (None) or says why none will
        #: (the prediction controller sets it); Accept prediction asks it.
        self.prediction_request: Callable[[ImageDocument], str | None] | None = None
        self.review = Review(ui, self)
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
        ui.images.note.connect(self._list_note)
        ui.palette.classChosen.connect(lambda _i: self.show_cursor_info(-1, -1))
        ui.palette.classChosen.connect(lambda _i: self.fill.refresh())  # the preview's colour
        for name, tool in TOOL_ACTIONS.items():
            ui.action(name).triggered.connect(lambda _c=False, t=tool: self._tool_changed(t))
        self.labelsSaved.connect(self.refresh_record)
        self.recordsChanged.connect(self._records_changed)
        self.saveFailed.connect(self._save_failed)
        for name, handler in {
            "actionSave": self.save_now,
            "actionUndo": self.undo,
            "actionRedo": self.redo,
            "actionAcceptPrediction": self.accept_prediction,
            "actionBrushBigger": lambda: self.resize_brush(1.25),
            "actionBrushSmaller": lambda: self.resize_brush(0.8),
            "actionMarkReviewed": lambda: self.toggle_reviewed(ask=True),
            "actionLeastConfident": self.go_least_confident,
        }.items():
            ui.action(name).triggered.connect(lambda _c=False, h=handler: h())

    # -- the project and the open image ------------------------------------------------------

    def open(self, project: Project) -> None:
        self.project, self.loads = project, DocumentLoads(project, self.saver)
        self.cache = ProjectCache(project)
        self.cache.changed.connect(self._cache_changed)

    def records(self) -> list[ImageRecord]:
        """Every image's record, from memory (none without a project)."""
        return [] if self.cache is None else self.cache.records()

    def status(self, name: str) -> ImageStatus | None:
        """The status of ``name``, from memory (None: no such image, or no project)."""
        return None if self.cache is None else self.cache.status(name)

    def _cache_changed(self, names: frozenset[str] | None) -> None:
        """On the writing thread: hand the change to the GUI thread (a queued signal)."""
        self.recordsChanged.emit(names)

    def _records_changed(self, names: frozenset[str] | None) -> None:
        """The image list shows the records the store now holds."""
        cache = self.cache
        if cache is None:
            return  # closed meanwhile
        records = [cache.record(name) for name in names] if names is not None else None
        if records is None or any(r is None for r in records):
            self.ui.images.set_records(cache.records())  # images came or went
            return
        for record in filter(None, records):  # none is None (see above)
            self.ui.images.update_record(record)

    @property
    def loading(self) -> str | None:
        """The image being opened (another is still on screen until it is ready), or None."""
        return self._loading

    def stop_loading(self) -> None:
        """Drop a load under way (its result is ignored when it arrives)."""
        self._loading = None
        self._load_timer.stop()

    def close(self) -> None:
        """Before the project closes: stop loads (a file's decode is not waited for: it
        only reads) and GrabCut, save everything and wait (telling the user what could not
        be saved), and show nothing."""
        self.stop_loading()
        if self.loads is not None:
            self.loads.close(WAIT_S)
        self.grabcut.close()
        self.fill.clear()
        self.review.close()
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
        if self.cache is not None:
            self.cache.changed.disconnect(self._cache_changed)
            self.cache.close()
        self.doc, self.project, self.cache, self.loads = None, None, None, None
        self._notice = self._view_saved = None
        self.ui.canvas.set_image(None)
        self.ui.canvas.set_labels(None)
        self.ui.canvas.set_prediction(None, None)

    def shutdown(self) -> None:
        """The window closes: no more saves (a load still decoding a file is abandoned)."""
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
        if name is None or self.loads is None:
            return
        self.loaders.start(
            self.loads.load,
            name,
            returned=self._image_loaded,
            errored=lambda exc, n=name: self._image_failed(n, exc),
        )

    def _image_loaded(self, doc: ImageDocument | None) -> None:
        project = self.project
        if doc is None:
            return  # its project closed while the file was read
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
        self.grabcut.end()
        self.review.shown(doc)
        self.doc = doc
        self.ui.images.set_broken(doc.name, None)  # it reads (again)
        doc.editor.changed.connect(self._labels_changed)
        doc.editor.history_changed.connect(self._history_changed)
        doc.predicted.connect(self._show_prediction)
        doc.noticed.connect(self._doc_notice)
        doc.reopened.connect(self._reopened)
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
        doc.reopened.disconnect(self._reopened)

    def _doc_notice(self, text: str) -> None:
        """The open document says something the user must see (it saves on this thread)."""
        self.ui.say(text, 30000)
        project = self.project
        if project is not None and self.ui.palette.labelset != project.labelset:
            self.ui.palette.set_labelset(project.labelset)  # classes changed elsewhere

    def _image_failed(self, name: str, exc: BaseException) -> None:
        """``name`` cannot be read: marked in the list, never a dialog. Reached by
        next/previous (or with no image shown yet), the list goes on the same way;
        chosen by hand, it stays on the image shown."""
        if name != self._loading:
            return
        self._loading = None
        images = self.ui.images
        images.set_broken(name, error_text(exc))
        stepped = images.stepped
        delta = stepped[1] if stepped is not None and stepped[0] == name else 0
        if delta == 0 and self.doc is None:
            delta = 1  # nothing on screen yet (opening the project): the next one that reads
        if delta and images.step(delta, start=name):
            # the list names any other file it passed over; this one is said with the next
            passed = f"Skipped {name}: it cannot be read ({images.broken(name)})"
            self._notice = passed if self._notice is None else f"{passed}. {self._notice}"
            return
        reason = images.broken(name)
        if delta:
            where = "after" if delta > 0 else "before"
            self.ui.say(f"{name} cannot be read ({reason}); no readable image {where} it", 15000)
        else:
            self.ui.say(f"{name} cannot be read: {reason}", 15000)
        if self.doc is not None:  # keep the list on the image that is shown
            images.select(self.doc.name, emit=False)

    def _list_note(self, text: str) -> None:
        """Next/previous passed over unreadable files: said now, and again once the image
        it went to is shown (opening it clears the status bar)."""
        if self._loading is not None:
            self.set_notice(text)
        else:
            self.ui.say(text, 15000)

    def _reopened(self, name: str) -> None:
        """A reviewed image was edited: it is in progress again (stored with the save)."""
        record = self.ui.images.record_of(name)
        if record is not None:
            self.ui.images.update_record(
                dataclasses.replace(record, status=ImageStatus.IN_PROGRESS)
            )
        self.ui.say(f"{name} was reviewed; edited, it is in progress again (R: reviewed)", 6000)

    def _labels_changed(self, rect: Any) -> None:
        self.ui.canvas.update_labels(rect.y0, rect.x0, rect.y1, rect.x1)
        self.fill.refresh()

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
        self.fill.refresh()
        self.changed.emit()
        if self.doc is not None:
            self.review.predicted(self.doc)  # accepted if asked for before it arrived

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
        record = None if self.cache is None else self.cache.record(name)
        if record is not None:  # else the image vanished
            self.ui.images.update_record(record)

    # -- tools -------------------------------------------------------------------------------

    @property
    def lock_unlabeled(self) -> bool:
        return self.ui.checked("actionLockUnlabeled")

    def _edited_now(self) -> None:
        """A tool edited the labels: save after the idle pause."""
        self.idle_timer.start()

    def restore_tool(self, name: object) -> None:
        """Choose the tool a project stored by name (the brush for anything else)."""
        tool = next((t for t in Tool if t.name == name), Tool.BRUSH)
        for action_name, t in TOOL_ACTIONS.items():
            if t is tool:
                self.ui.action(action_name).setChecked(True)  # its group unchecks the others
        self.ui.canvas.set_tool(tool)
        self._tool_changed(tool)

    def _tool_changed(self, tool: Tool) -> None:
        """A tool button or key (before the canvas switches): the fill shows its options,
        GrabCut stops refining."""
        self.fill.tool_changed(tool)
        self.grabcut.end()

    def resize_brush(self, factor: float) -> None:
        """``]`` and ``[``: the brush size, or the fill's tolerance with the fill tool."""
        canvas = self.ui.canvas
        if canvas.tool is Tool.FILL:
            self.fill.nudge(factor > 1)
            return
        canvas.set_brush_radius(canvas.brush_radius * factor)
        self.ui.say(f"Brush radius {canvas.brush_radius:.1f} px", 2000)

    def _stroke_started(self) -> None:
        if self.ui.canvas.tool is Tool.GRABCUT:
            self.grabcut.stroke_started()
        elif self.doc is not None:
            kind = STROKES.get(self.ui.canvas.tool, StrokeKind.PAINT)
            self.doc.begin_stroke(kind, self.ui.palette.current(), lock=self.lock_unlabeled)

    def _stroke_moved(self, x0: float, y0: float, x1: float, y1: float) -> None:
        if self.ui.canvas.tool is Tool.GRABCUT:
            self.grabcut.stroke_moved(x0, y0, x1, y1)
        elif self.doc is not None:
            self.doc.stroke_to(x0, y0, x1, y1, self.ui.canvas.brush_radius)

    def _stroke_finished(self) -> None:
        if self.ui.canvas.tool is Tool.GRABCUT:
            self.grabcut.stroke_finished()
        elif self.doc is not None and self.doc.end_stroke():
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
        self.fill.click(x, y)

    def _polygon_finished(self, points: list[tuple[float, float]]) -> None:
        if self.doc is not None:
            self.doc.polygon(points, self.ui.palette.current(), lock=self.lock_unlabeled)
            self.idle_timer.start()

    def _box_finished(self, x0: int, y0: int, x1: int, y1: int) -> None:
        """GrabCut runs in a worker (it can take a second on a big box)."""
        self.grabcut.box(x0, y0, x1, y1)

    def undo(self) -> None:
        self.grabcut.end()
        if self.doc is not None and self.doc.editor.undo() is not None:
            self.idle_timer.start()

    def redo(self) -> None:
        self.grabcut.end()
        if self.doc is not None and self.doc.editor.redo() is not None:
            self.idle_timer.start()

    def accept_prediction(self) -> None:
        """Copy the prediction into every unlabelled pixel, or say why not (see
        :class:`~segstudio.gui.review.Review`)."""
        self.grabcut.end()
        self.review.accept_prediction()

    def show_cursor_info(self, x: int, y: int) -> None:
        ls = self.ui.palette.labelset  # the palette's copy: no project lock
        self.pos_label.setText(cursor_text(self.doc, ls, self.ui.palette.current(), x, y))

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
        self.save_view()
        doc = self.doc
        if doc is None or not doc.unsaved:
            return
        if doc.stroking:
            doc.save()  # not self.save(): that would end the drag
        else:
            self.save()

    def save_view(self) -> None:
        """Store the view settings (class, brush, tool, layers...) when they changed, on the
        saver's thread: a kill -9 loses at most the last autosave interval of them."""
        project = self.project
        if project is None or self.view_state is None or project.read_only:
            return
        view = self.view_state()
        if view == self._view_saved:
            return
        self._view_saved = view
        self.saver.call(lambda: project.set_setting(VIEW_SETTING, view))

    def _save_failed(self, name: str, message: str) -> None:
        retried = "Your labels are kept and saving is retried."
        self.ui.say(f"Could not save {name}: {message}. {retried}", 15000)

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

    def toggle_reviewed(self, *, ask: bool = False) -> None:
        """Mark the image reviewed, or in progress again; ``ask`` (the R key): ask first
        when pixels are unlabelled (see :class:`~segstudio.gui.review.Review`)."""
        self.review.toggle_reviewed(ask=ask)

    def go_least_confident(self) -> None:
        if self.cache is None:
            return
        name = self.cache.least_confident()
        if name is None:
            self.ui.say("No predicted image to review: predict first", 6000)
            return
        self.ui.images.show_all()
        self.ui.images.select(name)
