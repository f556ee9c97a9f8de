"""Accepting the prediction and marking an image reviewed: done, or said why not.

Accept prediction copies the prediction into the unlabelled pixels and says
how many it filled. Pressed before the prediction arrived, it says so, asks
the prediction controller to make sure one is coming (or to say why none
will), and accepts it the moment it arrives. R on an image with unlabelled
pixels asks first (how many, and what share), offering to accept the
prediction for them, to mark the image anyway, or to cancel; the question is
window-modal and non-blocking, so nothing waits in a nested event loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QAbstractButton, QMessageBox

from segstudio.gui.ui import Ui
from segstudio.io.project import ImageStatus
from segstudio.session.document import ImageDocument

if TYPE_CHECKING:
    from segstudio.gui.editing import EditingController


class Review(QObject):
    """Accept prediction and Mark reviewed for the editing controller's open image."""

    def __init__(self, ui: Ui, editing: EditingController) -> None:
        super().__init__(editing)
        self.ui, self.editing = ui, editing
        #: The image whose prediction is accepted as soon as it arrives.
        self.waiting: ImageDocument | None = None
        #: The image being opened whose prediction is accepted once it shows: accept
        #: pressed right after moving on means that image, not the one still on screen.
        self.on_open: str | None = None
        #: The question R asks, while it is open.
        self.box: QMessageBox | None = None

    def close(self) -> None:
        """The project closes: nothing waits, no question stays open."""
        self.waiting = self.on_open = None
        if self.box is not None:
            self.box.reject()
            self.box = None

    def shown(self, doc: ImageDocument) -> None:
        """Another image is on screen: a wait for the last one's prediction ends."""
        if self.waiting is not None and self.waiting is not doc:
            self.ui.say(f"Not accepting the prediction of {self.waiting.name}: left", 5000)
            self.waiting = None
        if self.on_open is not None:
            name, self.on_open = self.on_open, None
            if name == doc.name:
                self.accept_prediction(doc)  # it is about to be the open image
            else:
                self.ui.say(f"Not accepting the prediction of {name}: left", 5000)

    def predicted(self, doc: ImageDocument) -> None:
        """``doc``'s prediction is shown: accepted if the user asked before it came, and
        offered by R's question if that is open for it."""
        box = self.box
        if box is not None and doc.prediction is not None and box.property("image") == doc.name:
            accept = box.findChild(QAbstractButton, "reviewAcceptPrediction")
            if accept is not None:
                accept.setEnabled(True)
                accept.setToolTip("")
            box.setInformativeText("The prediction has arrived: it can fill them.")
        if doc.prediction is not None and self.waiting is doc:
            self.waiting = None
            self.accept_prediction(doc)

    def accept_prediction(self, doc: ImageDocument | None = None) -> None:
        """Copy the prediction into every unlabelled pixel (one undo step), and say so.

        Before the prediction has arrived: say so, make sure one is coming, and
        accept it when it comes; or say why none will. ``doc``: the image (default:
        the one the user means, which is the one being opened if they moved on).
        """
        if doc is None:
            doc, opening = self.editing.doc, self.editing.loading
            if opening is not None and (doc is None or opening != doc.name):
                self.on_open = opening  # the user moved on: the image being opened is meant
                self.ui.say(f"Opening {opening}: its prediction is accepted once it shows", 0)
                return
        if doc is None:
            return
        if doc.prediction is None:
            ask = self.editing.prediction_request
            why = None if ask is None else ask(doc)
            if why is not None:
                self.waiting = None
                self.ui.say(f"No prediction to accept for {doc.name}: {why}", 10000)
                return
            self.waiting = doc
            self.ui.say(
                f"{doc.name} has no prediction yet: it is accepted into the unlabelled pixels "
                "as soon as it arrives",
                0,
            )
            return
        before = doc.unlabeled()
        if before == 0:
            self.ui.say("Nothing to accept: every pixel is labelled", 5000)
            return
        doc.accept_prediction()
        filled = before - doc.unlabeled()
        self.ui.say(
            f"Accepted the prediction into {filled:,} unlabelled pixels"
            + ("" if filled == before else f" ({before - filled:,} stay unlabelled)"),
            6000,
        )
        self.editing.idle_timer.start()

    def toggle_reviewed(self, *, ask: bool = False) -> None:
        """Mark the image reviewed, or (when it is) in progress again.

        With ``ask`` (the R key), an image with unlabelled pixels is not marked
        at once: a question says how many, and offers to accept the prediction
        for them first, to mark it anyway, or to cancel.
        """
        doc, project = self.editing.doc, self.editing.project
        if doc is None or project is None:
            return
        opening = self.editing.loading
        if opening is not None and opening != doc.name:  # the user moved on: not this one
            self.ui.say(f"Still opening {opening}: mark it once it shows", 5000)
            return
        if ask and not doc.reviewed and self._status_of(doc) is not ImageStatus.REVIEWED:
            missing = doc.unlabeled()
            if missing:
                self._ask_review(doc, missing)
                return
        self._set_reviewed(doc)

    def _status_of(self, doc: ImageDocument) -> ImageStatus | None:
        record = self.ui.images.record_of(doc.name)
        return None if record is None else record.status

    def _set_reviewed(self, doc: ImageDocument, *, force: bool | None = None) -> None:
        project = self.editing.project
        if project is None or doc is not self.editing.doc:
            return
        if not self.editing.save_now():
            return  # never mark reviewed what is not on disk
        status = self.editing.status(doc.name)  # from memory: the save above updated it
        if force is None:
            force = status is not ImageStatus.REVIEWED
        new = ImageStatus.REVIEWED if force else ImageStatus.IN_PROGRESS
        project.set_status(doc.name, new)
        doc.set_reviewed(new is ImageStatus.REVIEWED)
        self.editing.refresh_record(doc.name)
        self.ui.say(f"{doc.name}: {new.value.replace('_', ' ')}", 4000)

    def _ask_review(self, doc: ImageDocument, missing: int) -> None:
        """R on an image with unlabelled pixels: accept the prediction for them, mark
        anyway, or cancel (a window-modal question: nothing waits in a nested loop)."""
        share = 100.0 * missing / doc.labels.size
        box = QMessageBox(self.ui.window)
        box.setObjectName("reviewQuestion")
        box.setProperty("image", doc.name)
        box.setWindowTitle("Mark reviewed")
        box.setIcon(QMessageBox.Icon.Question)
        box.setText(
            f"{missing:,} pixels of {doc.name} ({share:.1f} %) are unlabelled.\n"
            "Reviewed images are exported and trained on; unlabelled pixels are ignored."
        )
        accept = box.addButton("Accept the prediction for them", QMessageBox.ButtonRole.AcceptRole)
        accept.setObjectName("reviewAcceptPrediction")
        if doc.prediction is None:
            accept.setEnabled(False)
            accept.setToolTip("This image has no prediction yet")
            box.setInformativeText("There is no prediction for this image yet.")
        anyway = box.addButton("Mark reviewed anyway", QMessageBox.ButtonRole.DestructiveRole)
        anyway.setObjectName("reviewAnyway")
        cancel = box.addButton(QMessageBox.StandardButton.Cancel)
        cancel.setObjectName("reviewCancel")
        box.setDefaultButton(cancel)

        def answered(button: QAbstractButton) -> None:
            if self.box is box:
                self.box = None
            if button is accept and doc is self.editing.doc and doc.prediction is not None:
                doc.accept_prediction()
                self._set_reviewed(doc, force=True)
            elif button is anyway:
                self._set_reviewed(doc, force=True)
            else:
                self.ui.say(f"{doc.name} is not marked reviewed", 3000)
            box.deleteLater()
            self.ui.window.activateWindow()  # keys go to the window again, not the old box

        box.buttonClicked.connect(answered)
        self.box = box
        box.open()
