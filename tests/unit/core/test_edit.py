"""Tests of segstudio.core.edit: the one edit path (apply), its signals and remap in place."""

from __future__ import annotations

import numpy as np
import pytest

from segstudio.core import geometry, migrate
from segstudio.core.edit import LabelEditor, Rect, lut_delete
from segstudio.core.labelset import UNLABELED
from tests.unit.core.conftest import bbox_of, reference_apply

# ---------------------------------------------------------------------------- apply


def test_apply_changes_in_place_and_returns_changed_bbox() -> None:
    labels = np.full((40, 50), UNLABELED, dtype=np.uint8)
    ident = id(labels)
    ed = LabelEditor(labels)
    mask = np.zeros((6, 6), dtype=bool)
    mask[2:4, 1:5] = True
    rect = ed.apply(10, 20, mask, 3)
    assert rect == Rect(12, 21, 14, 25)
    assert ed.labels is labels and id(ed.labels) == ident
    assert (labels == 3).sum() == 8 and labels[12:14, 21:25].min() == 3
    assert ed.can_undo and not ed.can_redo and ed.undo_name == "Edit" and ed.dirty


def test_apply_without_change_is_not_a_step() -> None:
    labels = np.zeros((10, 10), dtype=np.uint8)
    ed = LabelEditor(labels)
    assert ed.apply(0, 0, np.ones((3, 3), bool), 0) is None
    assert ed.apply(0, 0, np.zeros((3, 3), bool), 5) is None
    assert not ed.can_undo and ed.history_bytes == 0 and not ed.dirty


@pytest.mark.parametrize(
    ("y0", "x0"),
    [(-3, -2), (-3, 8), (7, -4), (8, 9), (-20, 0), (0, 30), (9, 11)],
)
def test_mask_is_clipped_at_every_border(y0: int, x0: int) -> None:
    rng = np.random.default_rng((y0 + 50) * 100 + x0 + 50)
    labels = rng.integers(0, 3, (10, 12)).astype(np.uint8)
    before = labels.copy()
    mask = rng.random((5, 6)) < 0.7
    ed = LabelEditor(labels)
    rect = ed.apply(y0, x0, mask, 7)
    want = reference_apply(before, y0, x0, mask, 7)
    assert np.array_equal(labels, want)
    assert rect == bbox_of(want != before)
    ed.undo()
    assert np.array_equal(labels, before)


def test_only_unlabeled_lock() -> None:
    labels = np.full((8, 8), UNLABELED, dtype=np.uint8)
    labels[:, :4] = 1
    ed = LabelEditor(labels)
    rect = ed.apply(0, 0, np.ones((8, 8), bool), 2, only_unlabeled=True)
    assert rect == Rect(0, 4, 8, 8)
    assert (labels[:, :4] == 1).all() and (labels[:, 4:] == 2).all()
    # Nothing unlabeled is left: a second locked paint changes nothing.
    assert ed.apply(0, 0, np.ones((8, 8), bool), 3, only_unlabeled=True) is None


def test_eraser_writes_unlabeled() -> None:
    labels = np.ones((6, 6), dtype=np.uint8)
    ed = LabelEditor(labels)
    assert ed.apply(1, 1, np.ones((2, 2), bool), UNLABELED) == Rect(1, 1, 3, 3)
    assert (labels == UNLABELED).sum() == 4


def test_per_pixel_values() -> None:
    rng = np.random.default_rng(1)
    labels = np.full((30, 30), UNLABELED, dtype=np.uint8)
    labels[10:20, 10:20] = 2
    before = labels.copy()
    pred = rng.integers(0, 5, (12, 14)).astype(np.uint8)
    mask = rng.random((12, 14)) < 0.8
    ed = LabelEditor(labels)
    ed.apply(5, 8, mask, pred)
    assert np.array_equal(labels, reference_apply(before, 5, 8, mask, pred))
    ed.undo()
    assert np.array_equal(labels, before)
    ed.redo()
    assert np.array_equal(labels, reference_apply(before, 5, 8, mask, pred))
    # With the lock, a prediction only fills what nobody labelled.
    ed2 = LabelEditor(before.copy())
    ed2.apply(5, 8, mask, pred, only_unlabeled=True)
    assert np.array_equal(ed2.labels, reference_apply(before, 5, 8, mask, pred, True))


def test_non_bool_mask_is_read_as_nonzero() -> None:
    labels = np.zeros((5, 5), dtype=np.uint8)
    ed = LabelEditor(labels)
    ed.apply(0, 0, np.array([[0, 2], [1, 0]], dtype=np.uint8), 9)
    assert labels[0, 1] == 9 and labels[1, 0] == 9 and labels[0, 0] == 0


@pytest.mark.parametrize(
    ("mask", "value", "error"),
    [
        (np.ones(3, bool), 1, ValueError),
        (np.ones((3, 3), bool), 256, ValueError),
        (np.ones((3, 3), bool), -1, ValueError),
        (np.ones((3, 3), bool), 1.5, TypeError),
        (np.ones((3, 3), bool), np.ones((3, 4), np.uint8), ValueError),
        (np.ones((3, 3), bool), np.ones((3, 3), np.int64), ValueError),
    ],
)
def test_apply_rejects_bad_arguments(mask: np.ndarray, value: object, error: type) -> None:
    ed = LabelEditor(np.zeros((5, 5), dtype=np.uint8))
    with pytest.raises(error):
        ed.apply(0, 0, mask, value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "labels",
    [np.zeros((4, 4), np.uint16), np.zeros((4, 4, 3), np.uint8), [[0, 1]]],
)
def test_editor_rejects_bad_label_maps(labels: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        LabelEditor(labels)  # type: ignore[arg-type]


def test_read_only_labels_rejected() -> None:
    labels = np.zeros((4, 4), np.uint8)
    labels.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        LabelEditor(labels)


# -------------------------------------------------------- signals, switching images


def test_signals_carry_the_changed_rects() -> None:
    labels = np.zeros((20, 20), dtype=np.uint8)
    ed = LabelEditor(labels)
    rects: list[Rect] = []
    history: list[int] = []
    ed.changed.connect(rects.append)
    ed.history_changed.connect(lambda: history.append(1))
    with ed.step("Brush"):
        ed.apply(2, 2, np.ones((2, 2), bool), 1)
        ed.apply(2, 2, np.ones((2, 2), bool), 1)  # no change: no signal
        ed.apply(10, 12, np.ones((3, 1), bool), 1)
    assert rects == [Rect(2, 2, 4, 4), Rect(10, 12, 13, 13)]
    assert len(history) >= 2  # the first change and the end of the step
    n = len(history)
    assert ed.undo() == Rect(2, 2, 13, 13)
    assert rects[-1] == Rect(2, 2, 13, 13) and len(history) == n + 1
    assert ed.redo() == Rect(2, 2, 13, 13)
    assert rects[-1] == Rect(2, 2, 13, 13) and len(history) == n + 2
    ed.mark_saved()
    assert len(history) == n + 3


def test_set_labels_replaces_array_and_clears_history() -> None:
    ed = LabelEditor(np.zeros((6, 6), dtype=np.uint8))
    ed.apply(0, 0, np.ones((1, 1), bool), 1)
    ed.begin_step("Open")  # an open step is abandoned
    rects: list[Rect] = []
    ed.changed.connect(rects.append)
    other = np.ones((3, 7), dtype=np.uint8)
    ed.set_labels(other)
    assert ed.labels is other and ed.shape == (3, 7)
    assert not ed.can_undo and not ed.can_redo and not ed.dirty and not ed.in_step
    assert ed.history_bytes == 0 and rects == [Rect(0, 0, 3, 7)]
    ed.apply(0, 0, np.ones((1, 1), bool), 5)
    assert other[0, 0] == 5


# ------------------------------------------------------------------- remap in place


def test_editor_remap_migrates_pixels_and_history() -> None:
    labels = np.full((10, 10), UNLABELED, dtype=np.uint8)
    labels[:5] = 0
    ed = LabelEditor(labels)
    ed.apply(0, 0, np.ones((10, 2), bool), 2)  # classes 0,1,2,3: paint 2
    ed.apply(0, 8, np.ones((10, 2), bool), 3)
    ed.mark_saved()
    ed.apply(4, 4, np.ones((2, 2), bool), 1)
    ident = labels
    lut = lut_delete(4, 2)  # 2 -> unlabeled, 3 -> 2
    ed.remap(lut)
    assert ed.labels is ident
    assert (labels[:, :2] == UNLABELED).all() and (labels[:, 8:] == 2).all()
    assert ed.dirty
    ed.undo()  # the 1-patch was painted over class 0 / unlabeled
    assert ed.labels[4, 4] == 0 and ed.labels[5, 5] == UNLABELED and not ed.dirty
    ed.undo()
    assert (labels[:, 8:] == np.where(np.arange(10)[:, None] < 5, 0, UNLABELED)).all()
    ed.redo()
    assert (labels[:, 8:] == 2).all()


# ---------------------------------------------------------------------- import path


def test_old_import_path_still_offers_rect_and_the_luts() -> None:
    """Importers of segstudio.core.edit keep working after the split."""
    from segstudio.core import edit

    assert edit.Rect is geometry.Rect
    for name in ("apply_lut", "lut_delete", "lut_merge", "lut_move", "remap_lut"):
        assert getattr(edit, name) is getattr(migrate, name)
        assert name in edit.__all__
