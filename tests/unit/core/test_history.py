"""Tests of segstudio.core.history: pixel-diff undo records, steps, dirty state, byte bound.

The history is driven through :class:`~segstudio.core.edit.LabelEditor`, its one user,
and checked against full copies of the label map.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from segstudio.core.edit import LabelEditor
from segstudio.core.geometry import Rect
from segstudio.core.history import History, encode_atom
from segstudio.core.labelset import UNLABELED
from tests.unit.core.conftest import bbox_of, covers, disk, reference_apply

# -------------------------------------------------------------------------- records


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


@pytest.mark.parametrize(
    ("density", "positions"), [(1.0, None), (0.5, np.uint8), (0.001, np.uint16)]
)
def test_encode_atom_picks_the_smallest_encoding(density: float, positions: type | None) -> None:
    rng = np.random.default_rng(5)
    changes = rng.random((40, 60)) < density
    changes[0, 0] = changes[-1, -1] = True  # the box is tight
    n = int(changes.sum())
    old = rng.integers(0, 3, n).astype(np.uint8)
    atom = encode_atom(Rect(10, 20, 50, 80), changes, old, 7)
    if positions is None:
        assert atom.positions is None
    else:
        assert atom.positions is not None and atom.positions.dtype == positions
    assert atom.new == 7 and isinstance(atom.old, np.ndarray)
    labels = np.zeros((60, 90), np.uint8)
    atom.write(labels, atom.new)
    assert np.array_equal(labels[10:50, 20:80] == 7, changes) and (labels == 7).sum() == n
    atom.write(labels, atom.old)
    assert np.array_equal(labels[10:50, 20:80][changes], old)


# ------------------------------------------------------------------- steps and undo


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


def test_history_says_when_the_editor_must_signal() -> None:
    h = History(1 << 20)
    atom = encode_atom(Rect(0, 0, 1, 1), np.ones((1, 1), bool), np.zeros(1, np.uint8), 1)
    assert h.begin("outer") and not h.begin("inner")
    assert h.record(atom, "ignored")  # the step's first change
    assert not h.record(atom, "ignored")
    assert not h.end() and h.in_step
    assert h.end() and not h.in_step and h.undo_name == "outer" and h.dirty
    step = h.undo()
    assert step is not None and step.name == "outer" and len(step.atoms) == 2
    assert h.redo_name == "outer" and not h.dirty
    with pytest.raises(RuntimeError):
        h.end()


# ---------------------------------------------------------------------- dirty state


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


def test_clear_history_keeps_dirty_state() -> None:
    ed = LabelEditor(np.zeros((6, 6), dtype=np.uint8))
    ed.apply(0, 0, np.ones((1, 1), bool), 1)
    ed.clear_history()
    assert not ed.can_undo and ed.history_bytes == 0 and ed.dirty
    ed.mark_saved()
    ed.clear_history()
    assert not ed.dirty


# -------------------------------------------------------------------- history limit


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
