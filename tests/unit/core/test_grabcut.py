"""Tests of segstudio.core.grabcut: Box → GrabCut and its refinement by strokes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from segstudio.core.geometry import Rect
from segstudio.core.grabcut import GRABCUT_MIN_SIZE, grabcut_refine, grabcut_region, grabcut_start
from segstudio.core.tools import Placed, brush_segment


def full(p: Placed | None, shape: tuple[int, int]) -> np.ndarray:
    return np.zeros(shape, dtype=bool) if p is None else p.full(shape)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def synthetic(h: int, w: int, square: Rect, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    img = rng.normal(45, 18, (h, w, 3)).clip(0, 255).astype(np.uint8)
    img[square.slices] = rng.normal(205, 18, (square.height, square.width, 3)).clip(0, 255)
    truth = np.zeros((h, w), dtype=bool)
    truth[square.slices] = True
    return img, truth


def test_grabcut_recovers_a_bright_square() -> None:
    cv2.setRNGSeed(1)
    img, truth = synthetic(240, 320, Rect(70, 110, 170, 220))
    p = grabcut_region(img, 90, 50, 240, 190)  # a loose box around the square
    assert p is not None
    got = full(p, truth.shape)
    assert iou(got, truth) > 0.8
    assert p.rect.y0 >= 50 and p.rect.x0 >= 90 and p.rect.y1 <= 191 and p.rect.x1 <= 241


def test_grabcut_downscales_big_crops() -> None:
    cv2.setRNGSeed(1)
    img, truth = synthetic(1500, 1600, Rect(300, 350, 1200, 1300), seed=3)
    p = grabcut_region(img, 250, 250, 1350, 1250, max_side=256)
    assert p is not None
    assert iou(full(p, truth.shape), truth) > 0.8


def test_grabcut_small_or_hopeless_boxes_give_none() -> None:
    img, _ = synthetic(100, 100, Rect(30, 30, 70, 70))
    small = GRABCUT_MIN_SIZE - 2
    assert grabcut_region(img, 10, 10, 10 + small, 60) is None
    assert grabcut_region(img, 10, 10, 60, 10 + small) is None
    # The whole image as box leaves no background to learn from: GrabCut fails.
    assert grabcut_region(img, 0, 0, 99, 99) is None
    # A flat image has no foreground to find.
    flat = np.full((80, 80, 3), 120, dtype=np.uint8)
    assert grabcut_region(flat, 20, 20, 60, 60) is None


@pytest.mark.parametrize(
    "image",
    [np.zeros((20, 20), np.uint8), np.zeros((20, 20, 4), np.uint8), np.zeros((20, 20, 3))],
)
def test_grabcut_accepts_only_rgb_uint8(image: np.ndarray) -> None:
    with pytest.raises(ValueError):
        grabcut_region(image, 2, 2, 15, 15)


def test_a_result_can_be_refined_with_foreground_and_background_strokes() -> None:
    cv2.setRNGSeed(1)
    img, truth = synthetic(240, 320, Rect(70, 110, 170, 220))
    cut = grabcut_start(img, 90, 50, 240, 190)
    assert cut is not None and cut.region is not None
    assert cut.crop.x0 < 90 and cut.crop.x1 > 241 and cut.pixels == cut.region.mask.sum()
    before = cut.region.mask.copy()
    # marked background across the square: that band is cut out
    back = brush_segment(img.shape[:2], (100, 120), (230, 120), 3)
    assert back is not None
    less = grabcut_refine(cut, [(back, False)])
    got = full(less.region, truth.shape)
    assert not got[full(back, truth.shape)].any() and got[150, 150] and got[90, 150]
    assert np.array_equal(cut.region.mask, before)  # the first result is left as it was
    # marked foreground outside the box (inside the crop) is taken
    fore = brush_segment(img.shape[:2], (245, 60), (245, 160), 2)
    assert fore is not None
    more = grabcut_refine(less, [(fore, True)])
    assert full(more.region, truth.shape)[full(fore, truth.shape)].all()
    assert not full(more.region, truth.shape)[full(back, truth.shape)].any()  # still cut out


def test_nothing_found_then_a_foreground_stroke_finds_the_object() -> None:
    cv2.setRNGSeed(1)
    img, _ = synthetic(240, 320, Rect(70, 110, 170, 220))
    cut = grabcut_start(img, 90, 50, 180, 190)  # cuts the square: its rest is "background"
    assert cut is not None and cut.region is None and cut.pixels == 0
    fore = brush_segment(img.shape[:2], (120, 90), (170, 140), 4)
    assert fore is not None
    found = grabcut_refine(cut, [(fore, True)])
    assert found.region is not None and found.pixels >= fore.mask.sum()


def test_refining_a_downscaled_cut_keeps_thin_strokes() -> None:
    cv2.setRNGSeed(1)
    img, truth = synthetic(900, 1000, Rect(200, 250, 700, 750), seed=4)
    cut = grabcut_start(img, 230, 180, 770, 720, max_side=200)
    assert cut is not None and cut.scale < 0.5
    # a one-pixel background line through the object survives the downscale
    line = brush_segment(img.shape[:2], (300, 450), (700, 450), 0.5)
    assert line is not None
    refined = grabcut_refine(cut, [(line, False)])
    assert refined.mask.shape == cut.mask.shape
    assert (refined.mask == cv2.GC_BGD).sum() > (cut.mask == cv2.GC_BGD).sum()
    assert not full(refined.region, truth.shape)[450, 350:650].all()


def test_strokes_outside_the_crop_are_ignored_and_a_hopeless_refinement_finds_nothing() -> None:
    cv2.setRNGSeed(1)
    img, _ = synthetic(200, 200, Rect(60, 60, 140, 140))
    cut = grabcut_start(img, 50, 50, 150, 150)
    assert cut is not None
    far = Placed(0, 0, np.ones((3, 3), bool))  # outside the crop
    same = grabcut_refine(cut, [(far, True)])
    assert same.region is not None
    everything = Placed(cut.crop.y0, cut.crop.x0, np.ones((cut.crop.height, cut.crop.width), bool))
    nothing = grabcut_refine(cut, [(everything, False)])
    assert nothing.region is None and nothing.pixels == 0
    with pytest.raises(ValueError):
        grabcut_refine(cut, [], iterations=0)
