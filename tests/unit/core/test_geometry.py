"""Tests of segstudio.core.geometry: the half-open pixel rectangle."""

from __future__ import annotations

import numpy as np

from segstudio.core.geometry import Rect


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
