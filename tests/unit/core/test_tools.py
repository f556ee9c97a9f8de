"""Tests of segstudio.core.tools: the geometry of brush, fill, polygon and box."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segstudio.core.edit import LabelEditor, Rect
from segstudio.core.labelset import UNLABELED
from segstudio.core.tools import (
    DEFAULT_FILL_TOLERANCE,
    Placed,
    box_region,
    brush_segment,
    fill_region,
    flood_region,
    polygon_region,
)


def full(p: Placed | None, shape: tuple[int, int]) -> np.ndarray:
    return np.zeros(shape, dtype=bool) if p is None else p.full(shape)


def capsule_dist2(
    shape: tuple[int, int], p0: tuple[float, float], p1: tuple[float, float]
) -> np.ndarray:
    """Squared distance of every pixel centre to the segment, by brute force."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    (xa, ya), (xb, yb) = p0, p1
    dx, dy = xb - xa, yb - ya
    len2 = dx * dx + dy * dy
    t = np.zeros_like(xx) if len2 == 0 else (((xx - xa) * dx + (yy - ya) * dy) / len2).clip(0, 1)
    return (xx - xa - t * dx) ** 2 + (yy - ya - t * dy) ** 2


def reference_capsule(
    shape: tuple[int, int], p0: tuple[float, float], p1: tuple[float, float], r: float
) -> np.ndarray:
    """Pixel centres within r of the segment."""
    return capsule_dist2(shape, p0, p1) <= r * r


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


# --------------------------------------------------------------------------- brush


@pytest.mark.parametrize("radius", [0, 1, 1.5, 2, 3.7, 15, 20])
@pytest.mark.parametrize("centre", [(30, 25), (30.5, 25.25), (29.9, 24.6)])
def test_click_is_exactly_the_disk(centre: tuple[float, float], radius: float) -> None:
    shape = (60, 70)
    p = brush_segment(shape, centre, centre, radius)
    x, y = centre
    yy, xx = np.mgrid[0:60, 0:70]
    want = (xx - x) ** 2 + (yy - y) ** 2 <= radius**2
    assert np.array_equal(full(p, shape), want)
    if p is not None:
        assert p.mask.dtype == np.bool_
        assert p.mask.shape[0] <= 2 * radius + 1 and p.mask.shape[1] <= 2 * radius + 1


def test_integer_click_disk_is_symmetric() -> None:
    p = brush_segment((100, 100), (50, 50), (50, 50), 5)
    assert p is not None and p.rect == Rect(45, 45, 56, 56)
    m = p.mask
    assert np.array_equal(m, m[::-1]) and np.array_equal(m, m.T)
    assert m.sum() == 81  # pixel centres within 5 of the centre


@settings(max_examples=200, deadline=None)
@given(
    xa=st.floats(-10, 50),
    ya=st.floats(-10, 40),
    xb=st.floats(-10, 50),
    yb=st.floats(-10, 40),
    r=st.floats(0, 12),
)
def test_segment_matches_distance_to_segment(
    xa: float, ya: float, xb: float, yb: float, r: float
) -> None:
    shape = (30, 40)
    p = brush_segment(shape, (xa, ya), (xb, yb), r)
    d2 = capsule_dist2(shape, (xa, ya), (xb, yb))
    got = full(p, shape)
    # Float rounding may decide either way for a centre on the edge (to 1e-9).
    clear = np.abs(d2 - r * r) > 1e-9 * (1 + r * r)
    assert np.array_equal(got[clear], (d2 <= r * r)[clear])
    if p is not None:
        assert p.y0 >= 0 and p.x0 >= 0
        assert p.y0 + p.mask.shape[0] <= 30 and p.x0 + p.mask.shape[1] <= 40


def test_long_diagonal_segment_has_no_gaps() -> None:
    shape = (1200, 1600)
    p = brush_segment(shape, (10.3, 20.7), (1500.2, 1150.9), 2)
    assert p is not None
    m = full(p, shape)
    n, _ = cv2.connectedComponents(m.view(np.uint8), connectivity=4)
    assert n == 2  # background + one 4-connected stroke
    # Every row it crosses is one unbroken run, and the pixel nearest the line is in it.
    for t in np.linspace(0, 1, 5000):
        x, y = 10.3 + t * (1500.2 - 10.3), 20.7 + t * (1150.9 - 20.7)
        assert m[round(y), round(x)]
    rows = np.flatnonzero(m.any(axis=1))
    for i in rows:
        cols = np.flatnonzero(m[i])
        assert cols[-1] - cols[0] + 1 == cols.size
    # Only the segment's bounding box is allocated.
    assert p.mask.shape == (1134, 1494)


def test_drag_of_segments_is_one_connected_stroke() -> None:
    shape = (300, 400)
    rng = np.random.default_rng(0)
    pts = np.cumsum(rng.normal(0, 12, (40, 2)), axis=0) + np.array([200, 150])
    stroke = np.zeros(shape, dtype=bool)
    for a, b in itertools.pairwise(pts):
        stroke |= full(brush_segment(shape, tuple(a), tuple(b), 1), shape)
    n, _ = cv2.connectedComponents(stroke.view(np.uint8), connectivity=4)
    assert n == 2


def test_brush_is_clipped_to_the_image() -> None:
    p = brush_segment((50, 60), (-3, -2), (-3, -2), 6)
    assert p is not None and p.y0 == 0 and p.x0 == 0
    want = reference_capsule((50, 60), (-3, -2), (-3, -2), 6)
    assert np.array_equal(full(p, (50, 60)), want)
    q = brush_segment((50, 60), (58, 48), (80, 70), 4)
    assert q is not None and q.rect.y1 <= 50 and q.rect.x1 <= 60
    assert brush_segment((50, 60), (-30, -30), (-20, -10), 5) is None
    assert brush_segment((50, 60), (100, 10), (100, 10), 5) is None
    assert brush_segment((50, 60), (10.5, 10.5), (10.5, 10.5), 0.1) is None


@pytest.mark.parametrize("radius", [-1, float("nan"), float("inf")])
def test_brush_rejects_bad_radius(radius: float) -> None:
    with pytest.raises(ValueError):
        brush_segment((10, 10), (5, 5), (5, 5), radius)


def test_brush_rejects_non_finite_points() -> None:
    with pytest.raises(ValueError):
        brush_segment((10, 10), (float("nan"), 5), (5, 5), 2)


def test_brush_goes_through_the_editor() -> None:
    labels = np.full((100, 120), UNLABELED, dtype=np.uint8)
    ed = LabelEditor(labels)
    with ed.step("Brush"):
        for a, b in [((10, 10), (40, 30)), ((40, 30), (80, 35))]:
            p = brush_segment(labels.shape, a, b, 4)
            assert p is not None
            ed.apply(p.y0, p.x0, p.mask, 2)
    want = reference_capsule(labels.shape, (10, 10), (40, 30), 4)
    want |= reference_capsule(labels.shape, (40, 30), (80, 35), 4)
    assert np.array_equal(labels == 2, want)
    ed.undo()
    assert (labels == UNLABELED).all()


# --------------------------------------------------------------------------- fill


def test_flood_4_vs_8_connectivity() -> None:
    labels = np.zeros((6, 6), dtype=np.uint8)
    labels[1, 1] = labels[2, 2] = labels[3, 3] = 5  # a diagonal chain
    labels[3, 4] = 5
    p4 = flood_region(labels, 1, 1, connectivity=4)
    assert p4 is not None and p4.rect == Rect(1, 1, 2, 2) and p4.mask.all()
    p8 = flood_region(labels, 1, 1, connectivity=8)
    assert p8 is not None and p8.rect == Rect(1, 1, 4, 5)
    assert np.array_equal(full(p8, labels.shape), labels == 5)
    # The background of the chain: one region with 4-connectivity around it too.
    bg = flood_region(labels, 0, 0)
    assert bg is not None and np.array_equal(full(bg, labels.shape), labels == 0)


def test_flood_region_is_cropped_to_its_bbox() -> None:
    labels = np.full((300, 400), UNLABELED, dtype=np.uint8)
    labels[100:150, 200:260] = 3
    labels[120, 220] = 4  # a hole
    p = flood_region(labels, 210, 110)
    assert p is not None and p.rect == Rect(100, 200, 150, 260)
    assert p.mask.sum() == 50 * 60 - 1 and not p.mask[20, 20]


def test_flood_repeated_fills_stay_correct() -> None:
    # The floodFill mask buffer is reused: a second fill must not see the first.
    rng = np.random.default_rng(2)
    labels = (rng.random((80, 90)) < 0.5).astype(np.uint8)
    _, comp = cv2.connectedComponents((labels == 1).view(np.uint8), connectivity=4)
    for _ in range(30):
        y, x = int(rng.integers(0, 80)), int(rng.integers(0, 90))
        p = flood_region(labels, x, y)
        assert p is not None
        got = full(p, labels.shape)
        if labels[y, x] == 1:
            assert np.array_equal(got, comp == comp[y, x])
        else:
            assert got[y, x] and not (got & (labels == 1)).any()
    other = np.zeros((7, 9), dtype=np.uint8)  # another shape: a new buffer
    q = flood_region(other, 0, 0)
    assert q is not None and q.mask.all() and q.rect == Rect(0, 0, 7, 9)


def test_flood_seed_outside_and_bad_arguments() -> None:
    labels = np.zeros((5, 5), dtype=np.uint8)
    assert flood_region(labels, 5, 0) is None
    assert flood_region(labels, 0, -1) is None
    with pytest.raises(ValueError):
        flood_region(labels, 0, 0, connectivity=6)
    with pytest.raises(ValueError):
        flood_region(labels.astype(np.int32), 0, 0)


def test_flood_reads_read_only_and_strided_maps() -> None:
    labels = np.zeros((20, 20), dtype=np.uint8)
    labels[:, 10:] = 1
    labels.flags.writeable = False
    p = flood_region(labels, 15, 3)
    assert p is not None and p.rect == Rect(0, 10, 20, 20)
    q = flood_region(np.zeros((10, 20), np.uint8)[:, ::2], 0, 0)
    assert q is not None and q.rect == Rect(0, 0, 10, 10)


# ---------------------------------------------------------------- fill by colour, by class


def two_regions(h: int = 60, w: int = 80) -> np.ndarray:
    """Left half dark, right half bright, with a little noise."""
    rng = np.random.default_rng(0)
    img = np.zeros((h, w, 3), np.uint8)
    img[:, : w // 2] = 40
    img[:, w // 2 :] = 200
    return (img + rng.integers(0, 6, img.shape)).astype(np.uint8)


def test_fill_region_stays_in_the_colour_region_under_the_click() -> None:
    img = two_regions()
    labels = np.full(img.shape[:2], UNLABELED, np.uint8)
    left = fill_region(img, labels, 5, 30)
    assert left is not None and left.rect == Rect(0, 0, 60, 40) and left.mask.all()
    right = fill_region(img, labels, 70, 3)
    assert right is not None and right.rect == Rect(0, 40, 60, 80)


def test_fill_region_tolerance_is_per_channel_from_the_seed() -> None:
    img = np.zeros((1, 8, 3), np.uint8)
    img[0, :, 1] = [100, 105, 110, 115, 120, 125, 130, 135]  # a gradient in green only
    labels = np.full((1, 8), UNLABELED, np.uint8)
    got = fill_region(img, labels, 0, 0, tolerance=10)
    assert got is not None and got.rect == Rect(0, 0, 1, 3)  # fixed range: no creeping
    assert fill_region(img, labels, 0, 0, tolerance=0).rect == Rect(0, 0, 1, 1)
    every = fill_region(img, labels, 0, 0, tolerance=255)
    assert every is not None and every.rect == Rect(0, 0, 1, 8)
    assert DEFAULT_FILL_TOLERANCE == 12


def test_fill_region_never_leaves_the_seeds_label() -> None:
    img = np.full((20, 20, 3), 90, np.uint8)  # one flat colour everywhere
    labels = np.full((20, 20), UNLABELED, np.uint8)
    labels[:, 10] = 3  # a labelled wall splits the unlabelled area in two
    labels[5:8, 14:17] = 4  # and an island inside the right half
    right = full(fill_region(img, labels, 15, 15), labels.shape)
    assert right[:, 11:].sum() == 20 * 9 - 9 and not right[:, :11].any()
    assert not right[5:8, 14:17].any()  # labelled pixels stay out
    wall = full(fill_region(img, labels, 10, 0), labels.shape)
    assert np.array_equal(wall, labels == 3)  # a labelled seed: its own class only


def test_fill_region_by_prediction_follows_the_predicted_class() -> None:
    pred = np.zeros((10, 10), np.uint8)
    pred[2:6, 2:6] = 7
    labels = np.full((10, 10), UNLABELED, np.uint8)
    labels[2, 2] = 1
    got = full(fill_region(pred, labels, 3, 3, tolerance=0), labels.shape)
    expected = pred == 7
    expected[2, 2] = False
    assert np.array_equal(got, expected)


def test_fill_region_seed_outside_and_bad_arguments() -> None:
    img = np.zeros((5, 5, 3), np.uint8)
    labels = np.zeros((5, 5), np.uint8)
    assert fill_region(img, labels, 5, 0) is None
    for bad in (
        dict(source=np.zeros((5, 6, 3), np.uint8)),
        dict(source=np.zeros((5, 5, 4), np.uint8)),
        dict(source=np.zeros((5, 5, 3))),
        dict(labels=np.zeros((5, 5), np.int32)),
        dict(tolerance=256),
        dict(connectivity=6),
    ):
        kwargs = {"source": img, "labels": labels, "x": 0, "y": 0, **bad}
        with pytest.raises(ValueError):
            fill_region(**kwargs)


def test_fill_region_reads_read_only_and_strided_images() -> None:
    img = two_regions()
    img.flags.writeable = False
    labels = np.full(img.shape[:2], UNLABELED, np.uint8)
    got = fill_region(img, labels, 50, 10)
    assert got is not None and got.rect == Rect(0, 40, 60, 80)
    strided = two_regions(60, 160)[:, ::2]
    got = fill_region(strided, labels, 0, 0)
    assert got is not None and got.rect == Rect(0, 0, 60, 40)


# ------------------------------------------------------------------------ polygon


def test_polygon_rectangle_includes_its_outline() -> None:
    shape = (20, 20)
    p = polygon_region(shape, [(2, 3), (7, 3), (7, 9), (2, 9)])
    assert p is not None
    want = np.zeros(shape, dtype=bool)
    want[3:10, 2:8] = True
    assert np.array_equal(full(p, shape), want)


def test_polygon_triangle_area_and_clipping() -> None:
    shape = (200, 200)
    tri = [(20.0, 20.0), (180.0, 20.0), (20.0, 180.0)]
    p = polygon_region(shape, tri)
    assert p is not None
    area = full(p, shape).sum()
    assert abs(area - 0.5 * 160 * 160) < 2 * 160 + 10  # the outline adds about a pixel a side
    # Partly outside: clipped, never past the image.
    q = polygon_region((50, 50), [(-20.0, -20.0), (30.5, -5.0), (10.0, 70.0)])
    assert q is not None and q.y0 >= 0 and q.x0 >= 0
    assert q.rect.y1 <= 50 and q.rect.x1 <= 50
    assert polygon_region((50, 50), [(60, 60), (80, 60), (70, 90)]) is None


def test_polygon_needs_three_points() -> None:
    assert polygon_region((10, 10), []) is None
    assert polygon_region((10, 10), [(1, 1), (5, 5)]) is None
    with pytest.raises(ValueError):
        polygon_region((10, 10), [(1, 1), (5, float("inf")), (2, 8)])


# ---------------------------------------------------------------------------- box


@pytest.mark.parametrize(
    "corners", [(2, 3, 8, 6), (8, 6, 2, 3), (2, 6, 8, 3), (8, 3, 2, 6), (2.4, 2.6, 7.6, 6.4)]
)
def test_box_any_corner_order(corners: tuple[float, float, float, float]) -> None:
    p = box_region((10, 12), *corners)
    assert p is not None and p.rect == Rect(3, 2, 7, 9) and p.mask.all()


def test_box_clipped_and_outside() -> None:
    p = box_region((10, 12), -5, -5, 3, 20)
    assert p is not None and p.rect == Rect(0, 0, 10, 4)
    assert box_region((10, 12), 20, 0, 30, 5) is None
    one = box_region((10, 12), 4, 4, 4, 4)
    assert one is not None and one.rect == Rect(4, 4, 5, 5)
