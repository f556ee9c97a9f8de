"""session/document.py: the open image's edit operations, events and saving."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.core.labelset import UNLABELED, LabelClass, LabelSet
from segstudio.io.project import Project
from segstudio.session.document import ImageDocument, Saver, StrokeKind

LS = LabelSet("t", (LabelClass("a", (10, 10, 10)), LabelClass("b", (200, 0, 0))))


@pytest.fixture
def project(tmp_path: Path) -> Project:
    rgb = np.zeros((40, 60, 3), np.uint8)
    Image.fromarray(rgb).save(tmp_path / "one.png")
    project = Project.open(tmp_path)
    project.scan()
    project.set_labelset(LS)
    yield project
    project.close()


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
