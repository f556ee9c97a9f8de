"""session/document.py: the open image's edit operations, events and saving."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.core.labelset import UNLABELED, LabelSet
from segstudio.io.images import read_label_map
from segstudio.io.project import ImageStatus, Project
from segstudio.session.document import ImageDocument, Saver, StrokeKind
from tests.unit.session.conftest import LS


@pytest.fixture
def doc(project: Project) -> ImageDocument:
    saver = Saver()
    yield ImageDocument(project, "one.png", saver)
    saver.shutdown()


def test_a_stroke_is_one_undo_step_and_reports_changed_rectangles(doc: ImageDocument) -> None:
    rects = []
    doc.editor.changed.connect(rects.append)
    doc.begin_stroke(StrokeKind.PAINT, 1)
    assert doc.stroking
    doc.stroke_to(10, 10, 20, 10, radius=3)
    doc.stroke_to(20, 10, 30, 12, radius=3)
    assert doc.end_stroke() and not doc.stroking
    assert doc.labels[10, 15] == 1 and doc.labels[0, 0] == UNLABELED
    assert rects and all(not r.is_empty for r in rects)
    assert doc.editor.undo_name == "Brush"
    doc.editor.undo()
    assert (doc.labels == UNLABELED).all()


def test_erase_and_lock(doc: ImageDocument) -> None:
    doc.fill(0, 0, 0)  # everything class 0
    doc.begin_stroke(StrokeKind.ERASE)
    doc.stroke_to(5, 5, 5, 5, radius=2)
    doc.end_stroke()
    assert doc.labels[5, 5] == UNLABELED
    doc.begin_stroke(StrokeKind.PAINT, 1, lock=True)  # only unlabeled pixels change
    doc.stroke_to(5, 5, 5, 5, radius=4)
    doc.end_stroke()
    assert doc.labels[5, 5] == 1 and doc.labels[5, 9] == 0


def test_accept_needs_a_prediction_and_fills_only_unlabeled(doc: ImageDocument) -> None:
    assert doc.accept_prediction() is False  # nothing to accept yet: says so
    events = []
    doc.predicted.connect(lambda: events.append("predicted"))
    pred = np.ones(doc.labels.shape, np.uint8)
    assert doc.set_prediction(pred, np.full(pred.shape, 200, np.uint8))
    assert events == ["predicted"]
    assert not doc.set_prediction(np.ones((3, 3), np.uint8), np.ones((3, 3), np.uint8))
    doc.polygon([(0, 0), (10, 0), (10, 10), (0, 10)], 0)
    assert doc.accept_prediction()
    assert doc.labels[2, 2] == 0 and doc.labels[30, 50] == 1
    assert doc.pick(50, 30) == 1


def test_accept_brush_copies_the_prediction_under_the_brush(doc: ImageDocument) -> None:
    doc.set_prediction(np.ones(doc.labels.shape, np.uint8), np.zeros(doc.labels.shape, np.uint8))
    doc.begin_stroke(StrokeKind.ACCEPT)
    doc.stroke_to(30, 20, 30, 20, radius=3)
    doc.end_stroke()
    assert doc.labels[20, 30] == 1 and doc.labels[0, 0] == UNLABELED


def test_pick_prefers_the_label_and_knows_unlabeled(doc: ImageDocument) -> None:
    assert doc.pick(3, 3) is None
    doc.fill(3, 3, 1)
    assert doc.pick(3, 3) == 1


def test_save_writes_the_labels_and_tells(doc: ImageDocument, project: Project) -> None:
    saved = []
    doc.saved.connect(saved.append)
    assert doc.save() is None  # nothing changed: nothing written
    doc.fill(0, 0, 1)
    future = doc.save()
    assert future is not None
    future.result(timeout=30)
    assert saved == ["one.png"]
    assert (project.load_labels("one.png") == 1).all()


def test_a_failed_save_is_reported_and_kept(doc: ImageDocument, monkeypatch) -> None:
    failed = []
    doc.save_failed.connect(lambda name, msg: failed.append((name, msg)))

    def full(*_a, **_k):
        raise OSError("No space left on device")

    monkeypatch.setattr(doc.project, "save_labels", full)
    doc.fill(0, 0, 1)
    future = doc.save()
    assert future is not None
    future.exception(timeout=30)
    assert failed == [("one.png", "No space left on device")]
    assert "one.png" in doc._saver.failed  # kept, to be written again


# -- nothing painted is lost: mid-stroke saves, resized images, migrations elsewhere ----------


def _stored(project: Project) -> np.ndarray | None:
    """The labels as another handle of the project reads them from disk."""
    with Project.open(project.folder, read_only=True) as other:
        return other.load_labels("one.png")


def test_a_save_mid_stroke_keeps_the_part_drawn_and_one_undo_step(
    doc: ImageDocument, project: Project
) -> None:
    doc.begin_stroke(StrokeKind.PAINT, 1)
    doc.stroke_to(5, 5, 25, 5, radius=2)
    future = doc.save()  # the autosave timer, while the button is still down
    assert future is not None
    future.result(timeout=30)
    assert doc.stroking  # the drag goes on
    stored = _stored(project)
    assert stored is not None and stored[5, 15] == 1 and stored[30, 15] == UNLABELED
    assert doc.save() is None  # nothing new drawn since: nothing written again
    doc.stroke_to(25, 5, 25, 30, radius=2)
    doc.save().result(timeout=30)
    assert _stored(project)[30, 25] == 1
    doc.end_stroke()
    doc.save()  # the stroke ended where the last save left it: at most the same again
    doc._saver.wait()
    assert doc.editor.undo_name == "Brush"
    doc.editor.undo()  # the whole drag goes at once
    assert (doc.labels == UNLABELED).all()
    doc.save().result(timeout=30)
    assert (_stored(project) == UNLABELED).all()


def test_labels_of_a_resized_image_are_kept_aside_and_the_document_says_so(
    project: Project,
) -> None:
    reviewed = np.zeros((40, 60), np.uint8)
    reviewed[:, 30:] = 1
    project.save_labels("one.png", reviewed)
    project.set_status("one.png", ImageStatus.REVIEWED)
    Image.fromarray(np.zeros((50, 70, 3), np.uint8)).save(project.folder / "one.png")
    saver = Saver()
    try:
        doc = ImageDocument(project, "one.png", saver)
        assert doc.notice is not None and "kept" in doc.notice and "70 x 50" in doc.notice
        assert doc.labels.shape == (50, 70) and (doc.labels == UNLABELED).all()
        (kept,) = (project.state_dir / "labels" / "aside").iterdir()
        assert str(kept.relative_to(project.folder)) in doc.notice
        np.testing.assert_array_equal(read_label_map(kept), reviewed)
        assert project.record("one.png").status is ImageStatus.UNLABELED
        assert project.history("one.png")[-1]["action"] == "labels_set_aside"
        doc.fill(0, 0, 0)
        doc.save().result(timeout=30)
        np.testing.assert_array_equal(read_label_map(kept), reviewed)  # never overwritten
        assert (project.load_labels("one.png") == 0).all()
    finally:
        saver.shutdown()


def test_a_migration_made_elsewhere_renumbers_the_open_labels(
    doc: ImageDocument, project: Project
) -> None:
    notices = []
    doc.noticed.connect(notices.append)
    doc.fill(0, 0, 1)  # all "b"
    doc.save().result(timeout=30)
    doc.begin_stroke(StrokeKind.PAINT, 0)  # then some "a", unsaved
    doc.stroke_to(5, 5, 10, 5, radius=2)
    doc.end_stroke()
    swapped = LabelSet("t", (LS.classes[1], LS.classes[0]))
    lut = np.arange(256, dtype=np.uint8)
    lut[[0, 1]] = [1, 0]
    with Project.open(project.folder) as other:  # as another SegStudio would
        other.migrate_classes(lut, swapped)
    future = doc.save()
    assert future is not None
    future.result(timeout=30)  # not refused as stale
    assert doc.labelset_version == 1 and notices and "renumbered" in notices[0]
    stored = project.load_labels("one.png")
    assert stored[5, 7] == 1 and stored[30, 50] == 0  # the edit, in the new numbering
    doc.editor.undo()  # undo still works, in the new numbering
    assert doc.labels[5, 7] == 0


def test_a_save_queued_before_a_migration_is_renumbered(project: Project) -> None:
    saver = Saver()
    try:
        labels = np.ones((40, 60), np.uint8)
        swapped = LabelSet("t", (LS.classes[1], LS.classes[0]))
        lut = np.arange(256, dtype=np.uint8)
        lut[[0, 1]] = [1, 0]
        project.migrate_classes(lut, swapped)
        saver.submit(project, "one.png", labels, 0).result(timeout=30)
        assert (project.load_labels("one.png") == 0).all()
        assert not saver.failed
    finally:
        saver.shutdown()


def test_edits_that_cannot_be_renumbered_are_kept_aside(
    doc: ImageDocument, project: Project, monkeypatch
) -> None:
    notices = []
    doc.noticed.connect(notices.append)
    doc.fill(0, 0, 1)
    with Project.open(project.folder) as other:
        other.migrate_classes(np.arange(256, dtype=np.uint8), LS)
    monkeypatch.setattr(Project, "migration_lut", lambda self, version: None)
    assert doc.save() is None  # nothing to store in the new numbering ...
    (kept,) = (project.state_dir / "labels" / "aside").iterdir()
    assert (read_label_map(kept) == 1).all()  # ... but the edits are on disk
    assert notices and str(kept.relative_to(project.folder)) in notices[0]
    assert doc.labelset_version == 1 and (doc.labels == UNLABELED).all()


# -- fill under the click, GrabCut's refinements, reviewed images edited again -------------


@pytest.fixture
def halves(tmp_path: Path) -> ImageDocument:
    """An unlabelled image whose left half is dark and right half bright."""
    rgb = np.zeros((40, 60, 3), np.uint8)
    rgb[:, 30:] = 220
    Image.fromarray(rgb).save(tmp_path / "halves.png")
    with Project.open(tmp_path) as project:
        project.scan()
        project.set_labelset(LS)
        saver = Saver()
        yield ImageDocument(project, "halves.png", saver)
        saver.shutdown()


def test_fill_by_colour_fills_only_the_region_under_the_click(halves: ImageDocument) -> None:
    assert halves.fill(5, 20, 1)
    assert (halves.labels[:, :30] == 1).all() and (halves.labels[:, 30:] == UNLABELED).all()
    assert halves.editor.undo_name == "Fill"
    # a click on the labelled half fills its own class only: the bright half stays
    assert halves.fill(10, 10, 0)
    assert (halves.labels[:, :30] == 0).all() and (halves.labels[:, 30:] == UNLABELED).all()


def test_fill_by_prediction_needs_one_and_follows_its_classes(halves: ImageDocument) -> None:
    from segstudio.session.document import FillBy

    assert halves.fill_region(5, 5, FillBy.PREDICTION) is None  # no prediction yet
    assert not halves.fill(5, 5, 1, by=FillBy.PREDICTION)
    pred = np.zeros(halves.labels.shape, np.uint8)
    pred[10:20, 10:50] = 1  # one predicted object across both colour halves
    halves.set_prediction(pred, np.zeros_like(pred))
    assert halves.fill(15, 15, 1, by=FillBy.PREDICTION)
    np.testing.assert_array_equal(halves.labels == 1, pred == 1)


def test_place_again_replaces_the_last_placement_as_one_step_each(doc: ImageDocument) -> None:
    from segstudio.core.geometry import Rect
    from segstudio.core.tools import box_region

    doc.fill(0, 0, 0)
    doc.begin_stroke(StrokeKind.ERASE)
    doc.stroke_to(20, 20, 40, 20, radius=3)  # an unlabelled hole for the tool to work in
    doc.end_stroke()
    area = Rect(10, 10, 30, 50)
    first = doc.place_again(box_region(doc.labels.shape, 18, 16, 42, 24), 1, "Box → GrabCut", area)
    assert (doc.labels[16:25, 18:43] == 1).all()
    smaller = box_region(doc.labels.shape, 25, 18, 35, 22)
    second = doc.place_again(smaller, 1, "GrabCut refinement", area, first)
    assert (doc.labels[18:23, 25:36] == 1).all()
    assert doc.labels[20, 20] == UNLABELED  # dropped by the refinement: as before the tool
    assert doc.labels[16, 18] == 0  # labelled before the tool, so labelled again
    assert doc.editor.undo_name == "GrabCut refinement"
    doc.editor.undo()
    assert (doc.labels[16:25, 18:43] == 1).all()  # back to the first placement
    doc.editor.redo()
    # another edit since: a refinement goes over the labels as they are
    doc.begin_stroke(StrokeKind.PAINT, 0)
    doc.stroke_to(30, 20, 30, 20, radius=1)
    doc.end_stroke()
    doc.place_again(None, 1, "GrabCut refinement", area, second)
    assert doc.labels[20, 30] == 0 and doc.labels[20, 26] == 1


def test_editing_a_reviewed_image_makes_it_in_progress_again(project: Project) -> None:
    project.save_labels("one.png", np.zeros((40, 60), np.uint8))
    project.set_status("one.png", ImageStatus.REVIEWED)
    saver = Saver()
    try:
        doc = ImageDocument(project, "one.png", saver)
        reopened = []
        doc.reopened.connect(reopened.append)
        assert doc.reviewed
        doc.reload_labels()  # labels read again are no edit
        assert doc.reviewed and not reopened
        doc.begin_stroke(StrokeKind.PAINT, 1)
        doc.stroke_to(5, 5, 5, 5, radius=2)
        doc.stroke_to(6, 5, 6, 5, radius=2)
        doc.end_stroke()
        assert reopened == ["one.png"] and not doc.reviewed  # said once
        assert project.record("one.png").status is ImageStatus.REVIEWED  # until saved
        doc.save().result(timeout=30)
        assert project.record("one.png").status is ImageStatus.IN_PROGRESS
        # reviewed again, edited and undone: it was edited all the same
        project.set_status("one.png", ImageStatus.REVIEWED)
        doc.set_reviewed(True)
        assert doc.fill(30, 30, 1)
        doc.editor.undo()
        assert not doc.editor.dirty
        doc.save().result(timeout=30)
        assert project.record("one.png").status is ImageStatus.IN_PROGRESS
    finally:
        saver.shutdown()


def test_a_failed_save_still_owes_the_status_change(project: Project, monkeypatch) -> None:
    project.save_labels("one.png", np.zeros((40, 60), np.uint8))
    project.set_status("one.png", ImageStatus.REVIEWED)
    saver = Saver()
    try:
        doc = ImageDocument(project, "one.png", saver)
        doc.fill(0, 0, 1)
        real = Project.save_labels
        calls = {"n": 0}

        def flaky(self, *args, **kwargs):
            calls["n"] += 1
            if calls["n"] == 1:
                raise OSError("No space left on device")
            return real(self, *args, **kwargs)

        monkeypatch.setattr(Project, "save_labels", flaky)
        doc.save().exception(timeout=30)
        assert saver.failed["one.png"][3]  # the status change is kept with the labels
        project.set_status("one.png", ImageStatus.REVIEWED)  # as if it had not happened
        saver.retry_failed()
        saver.wait()
        assert project.record("one.png").status is ImageStatus.IN_PROGRESS
        assert (project.load_labels("one.png") == 1).all()
    finally:
        saver.shutdown()


def test_saver_call_runs_after_the_saves_queued_before(project: Project) -> None:
    saver = Saver()
    try:
        saver.submit(project, "one.png", np.ones((40, 60), np.uint8))
        seen = []
        saver.call(lambda: seen.append(project.load_labels("one.png")))
        saver.call(lambda: project.set_setting("view", {"class": float("nan")}))  # logged
        saver.wait()
        assert seen and (seen[0] == 1).all()
    finally:
        saver.shutdown()
