"""Tests of segstudio.core.edit: the one edit path, pixel-diff undo, class-migration LUTs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from segstudio.core.edit import (
    LabelEditor,
    Rect,
    apply_lut,
    lut_delete,
    lut_merge,
    lut_move,
    remap_lut,
)
from segstudio.core.labelset import UNLABELED


def reference_apply(
    labels: np.ndarray,
    y0: int,
    x0: int,
    mask: np.ndarray,
    value: int | np.ndarray,
    only_unlabeled: bool = False,
) -> np.ndarray:
    """What apply() must do, computed on full-image arrays (the naive way)."""
    h, w = labels.shape
    full_mask = np.zeros((h, w), dtype=bool)
    full_value = np.zeros((h, w), dtype=np.uint8)
    mh, mw = mask.shape
    for i in range(mh):
        for j in range(mw):
            y, x = y0 + i, x0 + j
            if 0 <= y < h and 0 <= x < w:
                full_mask[y, x] = mask[i, j]
                full_value[y, x] = value[i, j] if isinstance(value, np.ndarray) else value
    if only_unlabeled:
        full_mask &= labels == UNLABELED
    return np.where(full_mask, full_value, labels)


def bbox_of(diff: np.ndarray) -> Rect | None:
    ys, xs = np.nonzero(diff)
    if ys.size == 0:
        return None
    return Rect(int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1)


def covers(outer: Rect, inner: Rect | None) -> bool:
    return inner is None or outer.union(inner) == outer


def disk(r: int) -> np.ndarray:
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return yy * yy + xx * xx <= r * r


# ---------------------------------------------------------------------------- Rect


def test_rect_properties() -> None:
    r = Rect(2, 3, 5, 10)
    assert (r.height, r.width, r.is_empty) == (3, 7, False)
    assert r.slices == (slice(2, 5), slice(3, 10))
    a = np.arange(200).reshape(10, 20)
    assert a[r.slices].shape == (3, 7)
    assert Rect(4, 4, 4, 9).is_empty and Rect(4, 4, 3, 9).height == 0
    assert Rect(5, 5, 2, 2).width == 0


def test_rect_union_and_clip() -> None:
    a, b = Rect(0, 0, 2, 2), Rect(5, -3, 6, 1)
    assert a.union(b) == Rect(0, -3, 6, 2)
    empty = Rect(3, 3, 3, 3)
    assert a.union(empty) == a and empty.union(a) == a
    assert Rect(-4, -2, 50, 7).clip(10, 5) == Rect(0, 0, 10, 5)
    assert Rect(20, 0, 30, 5).clip(10, 5).is_empty


# ------------------------------------------------------------------- apply basics


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


def test_small_stroke_history_is_far_below_image_size() -> None:
    labels = np.full((3000, 4000), UNLABELED, dtype=np.uint8)
    labels[:, 2000:] = 1  # the stroke crosses two old values
    ed = LabelEditor(labels)
    d = disk(15)
    painted = 0
    with ed.step("Brush"):
        for i in range(60):
            rect = ed.apply(1500 - 15 + (i % 7), 1950 - 15 + 2 * i, d, 4)
            painted += 0 if rect is None else 1
    assert painted > 30
    changed = int((labels == 4).sum())
    assert changed > 3000
    assert ed.history_bytes < labels.size / 500  # ~24 KB allowed on a 12 MB image
    assert ed.history_bytes < 4 * changed
    ed.undo()
    assert (labels[:, :2000] == UNLABELED).all() and (labels[:, 2000:] == 1).all()


def test_full_image_fill_of_uniform_region_costs_almost_nothing() -> None:
    labels = np.full((1000, 1200), UNLABELED, dtype=np.uint8)
    ed = LabelEditor(labels)
    ed.apply(0, 0, np.ones(labels.shape, dtype=bool), 2)
    assert ed.history_bytes < 1024  # whole box changed, one old and one new value
    ed.undo()
    assert (labels == UNLABELED).all()


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


@pytest.mark.parametrize("density", [1.0, 0.6, 0.02])
def test_every_position_encoding_undoes_exactly(density: float) -> None:
    # density 1: the whole box changes; 0.6: a bit mask is smallest; 0.02: flat indices.
    rng = np.random.default_rng(int(density * 100))
    labels = rng.integers(0, 4, (300, 400)).astype(np.uint8)
    before = labels.copy()
    mask = rng.random((280, 390)) < density
    values = rng.integers(4, 9, mask.shape).astype(np.uint8)
    ed = LabelEditor(labels)
    ed.apply(10, 5, mask, values)
    after = labels.copy()
    n = int((after != before).sum())
    ed.undo()
    assert np.array_equal(labels, before)
    ed.redo()
    assert np.array_equal(labels, after)
    # Old and new values (2 n) plus the smaller of flat indices and a bit mask of the box.
    box = bbox_of(after != before)
    assert box is not None
    area = box.height * box.width
    positions = 0 if n == area else min(4 * n, (area + 7) // 8)
    assert ed.history_bytes <= 2 * n + positions + 1024


# ------------------------------------------------------------------ steps and undo


def test_a_drag_is_one_step() -> None:
    labels = np.zeros((50, 80), dtype=np.uint8)
    ed = LabelEditor(labels)
    d = disk(3)
    ed.begin_step("Brush")
    for x in range(5, 70, 2):
        ed.apply(20, x, d, 1)
    assert ed.in_step and not ed.can_undo  # no undo in the middle of a drag
    assert ed.undo() is None and (labels == 1).any()
    ed.end_step()
    assert ed.can_undo and ed.undo_name == "Brush"
    rect = ed.undo()
    assert rect == Rect(20, 5, 27, 76)
    assert not labels.any() and not ed.can_undo and ed.redo_name == "Brush"


def test_step_context_manager_and_nesting_counts_depth() -> None:
    labels = np.zeros((10, 10), dtype=np.uint8)
    ed = LabelEditor(labels)
    with ed.step("Outer"):
        ed.apply(0, 0, np.ones((2, 2), bool), 1)
        with ed.step("Inner"):
            ed.apply(5, 5, np.ones((2, 2), bool), 2)
        assert ed.in_step  # the inner end did not close the outer step
        ed.apply(8, 8, np.ones((2, 2), bool), 3)
    assert not ed.in_step and ed.undo_name == "Outer"
    ed.undo()
    assert not labels.any() and not ed.can_undo


def test_step_closes_on_exception() -> None:
    ed = LabelEditor(np.zeros((4, 4), dtype=np.uint8))
    with pytest.raises(KeyError), ed.step("Broken"):
        ed.apply(0, 0, np.ones((1, 1), bool), 1)
        raise KeyError("boom")
    assert not ed.in_step and ed.undo_name == "Broken"


def test_end_step_without_begin_raises() -> None:
    ed = LabelEditor(np.zeros((4, 4), dtype=np.uint8))
    with pytest.raises(RuntimeError):
        ed.end_step()


def test_empty_step_is_not_recorded_and_keeps_redo() -> None:
    labels = np.zeros((4, 4), dtype=np.uint8)
    ed = LabelEditor(labels)
    ed.apply(0, 0, np.ones((1, 1), bool), 1)
    ed.undo()
    with ed.step("Nothing"):
        ed.apply(0, 0, np.ones((2, 2), bool), 0)  # no pixel changes
    assert not ed.can_undo and ed.can_redo and ed.history_bytes > 0


def test_new_edit_after_undo_clears_redo() -> None:
    labels = np.zeros((4, 4), dtype=np.uint8)
    ed = LabelEditor(labels)
    ed.apply(0, 0, np.ones((1, 1), bool), 1, name="A")
    ed.apply(1, 1, np.ones((1, 1), bool), 2, name="B")
    ed.undo()
    assert ed.can_redo and ed.redo_name == "B"
    ed.apply(2, 2, np.ones((1, 1), bool), 3, name="C")
    assert not ed.can_redo and ed.redo() is None and ed.undo_name == "C"
    ed.undo()
    ed.undo()
    assert not labels.any()
    assert not ed.can_undo and ed.undo() is None


def test_undo_and_redo_on_empty_history_return_none() -> None:
    ed = LabelEditor(np.zeros((4, 4), dtype=np.uint8))
    assert ed.undo() is None and ed.redo() is None
    assert ed.undo_name is None and ed.redo_name is None


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


# --------------------------------------------------------------------- dirty state


def test_dirty_and_mark_saved() -> None:
    labels = np.zeros((6, 6), dtype=np.uint8)
    ed = LabelEditor(labels)
    assert not ed.dirty
    ed.apply(0, 0, np.ones((1, 1), bool), 1)
    assert ed.dirty
    ed.mark_saved()
    assert not ed.dirty
    ed.apply(1, 1, np.ones((1, 1), bool), 2)
    assert ed.dirty
    ed.undo()
    assert not ed.dirty  # back at the saved state
    ed.undo()
    assert ed.dirty
    ed.redo()
    assert not ed.dirty
    ed.redo()
    assert ed.dirty
    ed.undo()
    ed.apply(3, 3, np.ones((1, 1), bool), 4)  # a different branch
    assert ed.dirty
    ed.undo()
    assert not ed.dirty


def test_save_in_the_middle_of_a_step_stays_dirty() -> None:
    ed = LabelEditor(np.zeros((6, 6), dtype=np.uint8))
    with ed.step("Brush"):
        ed.apply(0, 0, np.ones((1, 1), bool), 1)
        ed.mark_saved()
        ed.apply(1, 1, np.ones((1, 1), bool), 1)
    assert ed.dirty
    ed.undo()
    assert ed.dirty
    ed.mark_saved()
    assert not ed.dirty


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


def test_clear_history_keeps_dirty_state() -> None:
    ed = LabelEditor(np.zeros((6, 6), dtype=np.uint8))
    ed.apply(0, 0, np.ones((1, 1), bool), 1)
    ed.clear_history()
    assert not ed.can_undo and ed.history_bytes == 0 and ed.dirty
    ed.mark_saved()
    ed.clear_history()
    assert not ed.dirty


# ---------------------------------------------------------------- history limit


def test_history_limit_drops_oldest_steps() -> None:
    rng = np.random.default_rng(7)
    labels = np.zeros((100, 100), dtype=np.uint8)
    limit = 20_000
    ed = LabelEditor(labels, history_limit_bytes=limit)
    states = [labels.copy()]
    for i in range(60):
        mask = rng.random((30, 30)) < 0.5
        ed.apply(int(rng.integers(0, 70)), int(rng.integers(0, 70)), mask, i % 5 + 1)
        states.append(labels.copy())
        assert ed.history_bytes <= limit
    # Some old steps went, the newest ones can still be undone exactly.
    undone = 0
    while ed.can_undo:
        ed.undo()
        undone += 1
        assert np.array_equal(labels, states[-1 - undone])
        assert ed.history_bytes <= limit
    assert 5 < undone < 60
    for k in range(undone):
        ed.redo()
        assert np.array_equal(labels, states[len(states) - undone + k])


def test_step_larger_than_limit_cannot_be_undone() -> None:
    labels = np.zeros((200, 200), dtype=np.uint8)
    ed = LabelEditor(labels, history_limit_bytes=2_000)
    ed.apply(0, 0, np.ones((2, 2), bool), 1, name="small")
    assert ed.can_undo
    checker = (np.indices((200, 200)).sum(0) % 2).astype(bool)
    ed.apply(0, 0, checker, 2, name="huge")  # 5 KB of bit mask at least
    assert not ed.can_undo and ed.history_bytes <= 2_000 and ed.dirty
    assert (labels[checker] == 2).all()


def test_drag_larger_than_limit_stops_recording() -> None:
    labels = np.zeros((200, 200), dtype=np.uint8)
    ed = LabelEditor(labels, history_limit_bytes=3_000)
    ed.apply(0, 0, np.ones((2, 2), bool), 1, name="before")
    with ed.step("Long drag"):
        for i in range(0, 200, 4):
            ed.apply(i, 0, np.indices((4, 200)).sum(0) % 2 == 0, 3)
            assert ed.history_bytes <= 3_000
    assert not ed.can_undo and ed.dirty and ed.history_bytes <= 3_000
    ed.apply(0, 0, np.ones((1, 1), bool), 9, name="after")
    assert ed.undo_name == "after"
    ed.undo()
    assert labels[0, 0] == 3 and ed.dirty


def test_limit_zero_keeps_no_history() -> None:
    labels = np.zeros((10, 10), dtype=np.uint8)
    ed = LabelEditor(labels, history_limit_bytes=0)
    ed.apply(0, 0, np.ones((3, 3), bool), 1)
    assert not ed.can_undo and ed.history_bytes == 0 and (labels[:3, :3] == 1).all()


def test_bad_history_limit() -> None:
    with pytest.raises(ValueError):
        LabelEditor(np.zeros((2, 2), np.uint8), history_limit_bytes=-1)


# ------------------------------------------------- property: undo/redo vs snapshots


@st.composite
def operations(draw: st.DrawFn) -> list[tuple]:
    ops: list[tuple] = []
    for _ in range(draw(st.integers(1, 30))):
        kind = draw(st.sampled_from(["apply", "apply", "apply", "begin", "end", "undo", "redo"]))
        if kind == "apply":
            shape = (draw(st.integers(1, 6)), draw(st.integers(1, 6)))
            mask = draw(hnp.arrays(np.bool_, shape))
            if draw(st.booleans()):
                value: int | np.ndarray = draw(st.sampled_from([0, 1, 2, UNLABELED]))
            else:
                value = draw(hnp.arrays(np.uint8, shape, elements=st.sampled_from([0, 1, 2, 255])))
            ops.append(
                (
                    "apply",
                    draw(st.integers(-5, 9)),
                    draw(st.integers(-5, 11)),
                    mask,
                    value,
                    draw(st.booleans()),
                )
            )
        elif kind == "undo" and draw(st.booleans()):
            ops.append(("save",))
        else:
            ops.append((kind,))
    return ops


@settings(max_examples=300, deadline=None)
@given(
    start=hnp.arrays(np.uint8, (8, 10), elements=st.sampled_from([0, 1, 2, 255])),
    ops=operations(),
)
def test_random_edit_sequences_match_full_copy_model(start: np.ndarray, ops: list[tuple]) -> None:
    labels = start.copy()
    ed = LabelEditor(labels)
    undo: list[np.ndarray] = []  # the model: a full copy of the state before each step
    redo: list[np.ndarray] = []
    depth = 0
    step_start: np.ndarray | None = None
    step_changed = False
    saved = start.copy()

    for op in ops:
        current = labels.copy()
        if op[0] == "apply":
            _, y0, x0, mask, value, lock = op
            want = reference_apply(current, y0, x0, mask, value, lock)
            rect = ed.apply(y0, x0, mask, value, only_unlabeled=lock)
            assert np.array_equal(labels, want)
            assert rect == bbox_of(want != current)
            if rect is not None:
                redo.clear()
                if depth == 0:
                    undo.append(current)
                else:
                    step_changed = True
        elif op[0] == "begin":
            ed.begin_step("s")
            depth += 1
            if depth == 1:
                step_start, step_changed = current, False
        elif op[0] == "end":
            if depth == 0:
                with pytest.raises(RuntimeError):
                    ed.end_step()
                continue
            ed.end_step()
            depth -= 1
            if depth == 0 and step_changed:
                assert step_start is not None
                undo.append(step_start)
                step_changed = False
        elif op[0] == "undo":
            rect = ed.undo()
            if depth == 0 and undo:
                assert rect is not None and covers(rect, bbox_of(labels != current))
                redo.append(current)
                assert np.array_equal(labels, undo.pop())
            else:
                assert rect is None and np.array_equal(labels, current)
        elif op[0] == "redo":
            rect = ed.redo()
            if depth == 0 and redo:
                assert rect is not None and covers(rect, bbox_of(labels != current))
                undo.append(current)
                assert np.array_equal(labels, redo.pop())
            else:
                assert rect is None and np.array_equal(labels, current)
        elif op[0] == "save":
            ed.mark_saved()
            saved = labels.copy()
        assert ed.can_undo == (depth == 0 and bool(undo))
        assert ed.can_redo == (depth == 0 and bool(redo))
        if not ed.dirty:
            assert np.array_equal(labels, saved)
    if depth:
        while depth:
            ed.end_step()
            depth -= 1
        if step_changed and step_start is not None:
            undo.append(step_start)
    # Unwind everything: each undo gives back the model's snapshot, then redo all.
    done: list[np.ndarray] = []
    while undo:
        done.append(labels.copy())
        ed.undo()
        assert np.array_equal(labels, undo.pop())
    assert not ed.can_undo
    while done:
        ed.redo()
        assert np.array_equal(labels, done.pop())
    assert ed.can_redo == bool(redo)


# ------------------------------------------------------------------ remap in place


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


# ------------------------------------------------------------------------- LUTs


def test_remap_lut() -> None:
    lut = remap_lut({0: 2, 3: UNLABELED}, 5)
    assert lut.dtype == np.uint8 and lut.shape == (256,)
    assert lut[0] == 2 and lut[3] == 255 and lut[1] == 1 and lut[4] == 4
    assert lut[255] == 255 and lut[100] == 100
    with pytest.raises(ValueError):
        remap_lut({5: 0}, 5)
    with pytest.raises(ValueError):
        remap_lut({0: 256}, 5)
    with pytest.raises(ValueError):
        remap_lut({}, 0)


def test_apply_lut_new_in_place_and_views() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 6, (50, 60)).astype(np.uint8)
    labels[0, :5] = UNLABELED
    lut = lut_delete(6, 1)
    want = lut[labels]
    out = apply_lut(labels, lut)
    assert out is not labels and np.array_equal(out, want)
    view = labels.copy()[:, ::2]  # not contiguous
    assert np.array_equal(apply_lut(view, lut), lut[view])
    same = labels.copy()
    assert apply_lut(same, lut, out=same) is same and np.array_equal(same, want)
    with pytest.raises(ValueError):
        apply_lut(labels, np.arange(10, dtype=np.uint8))
    with pytest.raises(ValueError):
        apply_lut(labels.astype(np.uint16), lut)


def _migrate_names(names: list[str], lut: np.ndarray, new_names: list[str]) -> None:
    """Every pixel of old class i must show the same name (or be unlabeled) afterwards."""
    for old, name in enumerate(names):
        new = int(lut[old])
        if new != UNLABELED:
            assert new_names[new] == name or name in new_names[new].split("+")


def test_lut_delete() -> None:
    names = ["a", "b", "c", "d"]
    lut = lut_delete(4, 1)
    assert list(lut[:5]) == [0, UNLABELED, 1, 2, 4] and lut[255] == 255
    _migrate_names(names, lut, ["a", "c", "d"])
    assert list(lut_delete(4, 3)[:4]) == [0, 1, 2, 255]
    assert list(lut_delete(1, 0)[:2]) == [255, 1]
    with pytest.raises(ValueError):
        lut_delete(4, 4)


@pytest.mark.parametrize(("source", "target"), [(1, 3), (3, 1), (0, 4), (4, 0), (2, 3)])
def test_lut_merge(source: int, target: int) -> None:
    names = ["a", "b", "c", "d", "e"]
    merged = names.copy()
    merged[target] = f"{names[target]}+{names[source]}"
    del merged[source]
    lut = lut_merge(5, source, target)
    assert lut[255] == 255
    assert merged[int(lut[source])] == merged[int(lut[target])]
    assert len({int(v) for v in lut[:5]}) == 4 and max(lut[:5]) == 3
    _migrate_names(names, lut, merged)
    with pytest.raises(ValueError):
        lut_merge(5, 2, 2)


@pytest.mark.parametrize(("src", "dst"), [(0, 3), (3, 0), (1, 2), (2, 2), (4, 0)])
def test_lut_move(src: int, dst: int) -> None:
    names = ["a", "b", "c", "d", "e"]
    moved = names.copy()
    moved.insert(dst, moved.pop(src))
    lut = lut_move(5, src, dst)
    assert sorted(lut[:5].tolist()) == [0, 1, 2, 3, 4] and lut[255] == 255
    for old, name in enumerate(names):
        assert moved[int(lut[old])] == name
    with pytest.raises(ValueError):
        lut_move(5, 0, 5)
