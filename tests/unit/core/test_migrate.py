"""Tests of segstudio.core.migrate: class-migration lookup tables and applying them."""

from __future__ import annotations

import numpy as np
import pytest

from segstudio.core.labelset import UNLABELED
from segstudio.core.migrate import (
    apply_lut,
    check_lut,
    check_value,
    lut_delete,
    lut_merge,
    lut_move,
    remap_lut,
)


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


def test_checks_of_values_and_tables() -> None:
    assert check_value(np.uint8(7)) == 7 and check_value(UNLABELED) == UNLABELED
    with pytest.raises(TypeError):
        check_value(True)
    with pytest.raises(ValueError):
        check_value(256)
    lut = np.arange(256, dtype=np.uint8)
    assert check_lut(lut) is lut
    for bad in (lut.astype(np.int16), lut[:255], list(range(256))):
        with pytest.raises(ValueError, match="lookup table"):
            check_lut(bad)
