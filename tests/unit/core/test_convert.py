"""Tests of segstudio.core.convert: RGB <-> index label maps."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from segstudio.core.convert import check_index_map, index_to_rgb, remap_void, rgb_to_index
from segstudio.core.errors import (
    LabelConversionError,
    UnknownColorsError,
    UnknownIndicesError,
)
from segstudio.core.labelset import UNLABELED, LabelClass, LabelSet, preset


def to_rgb(key: int) -> tuple[int, int, int]:
    return ((key >> 16) & 255, (key >> 8) & 255, key & 255)


def make_set(colors: list[tuple[int, int, int]], unlabeled=(0, 0, 0)) -> LabelSet:
    return LabelSet("test", tuple(LabelClass(f"c{i}", c) for i, c in enumerate(colors)), unlabeled)


@st.composite
def palettes(draw: st.DrawFn, max_classes: int = 255) -> LabelSet:
    """A label set of 1..max_classes random unique colours plus a distinct unlabeled colour."""
    keys = draw(
        st.lists(st.integers(0, (1 << 24) - 1), min_size=2, max_size=max_classes + 1, unique=True)
    )
    return make_set([to_rgb(k) for k in keys[1:]], to_rgb(keys[0]))


@st.composite
def palette_and_index(draw: st.DrawFn) -> tuple[LabelSet, np.ndarray]:
    ls = draw(palettes())
    shape = draw(hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=24))
    values = st.one_of(st.integers(0, ls.num_classes - 1), st.just(UNLABELED))
    index = draw(hnp.arrays(np.uint8, shape, elements=values))
    return ls, index


# -------------------------------------------------------------- round trips


@given(palette_and_index())
@settings(max_examples=100, deadline=None)
def test_index_rgb_index_round_trip(case: tuple[LabelSet, np.ndarray]) -> None:
    ls, index = case
    rgb = index_to_rgb(index, ls)
    assert rgb.shape == (*index.shape, 3) and rgb.dtype == np.uint8
    colors = {i: c.color for i, c in enumerate(ls.classes)} | {UNLABELED: ls.unlabeled_color}
    expected = np.array([colors[int(v)] for v in index.ravel()], dtype=np.uint8)
    np.testing.assert_array_equal(rgb.reshape(-1, 3), expected)
    back = rgb_to_index(rgb, ls)
    assert back.dtype == np.uint8 and back.shape == index.shape
    np.testing.assert_array_equal(back, index)


@given(palette_and_index(), st.data())
@settings(max_examples=60, deadline=None)
def test_unknown_colours_are_reported_with_counts(
    case: tuple[LabelSet, np.ndarray], data: st.DataObject
) -> None:
    ls, index = case
    rgb = index_to_rgb(index, ls)
    known = {c.color for c in ls.classes} | {ls.unlabeled_color}
    extra = data.draw(
        st.lists(
            st.integers(0, (1 << 24) - 1).map(to_rgb).filter(lambda c: c not in known),
            min_size=1,
            max_size=5,
            unique=True,
        )
    )
    flat = rgb.reshape(-1, 3)
    positions = data.draw(
        st.lists(st.integers(0, flat.shape[0] - 1), min_size=1, max_size=flat.shape[0])
    )
    expected: Counter[tuple[int, int, int]] = Counter()
    for p in dict.fromkeys(positions):  # each pixel once
        color = data.draw(st.sampled_from(extra))
        flat[p] = color
        expected[color] += 1

    with pytest.raises(UnknownColorsError) as info:
        rgb_to_index(rgb, ls)
    err = info.value
    assert dict(err.counts) == dict(expected)
    counts = [n for _, n in err.counts]
    assert counts == sorted(counts, reverse=True)
    for color, n in err.counts:
        assert f"{color} x {n}" in str(err)

    out = rgb_to_index(rgb, ls, unknown="unlabeled")
    unknown_mask = np.zeros(flat.shape[0], dtype=bool)
    unknown_mask[list(set(positions))] = True
    expected_index = index.ravel().copy()
    expected_index[unknown_mask] = UNLABELED
    np.testing.assert_array_equal(out.ravel(), expected_index)


def test_unknown_colour_message_is_capped() -> None:
    ls = make_set([(10, 10, 10)])
    rgb = np.zeros((1, 30, 3), dtype=np.uint8)
    rgb[0, :, 0] = np.arange(100, 130)  # 30 unknown colours, one pixel each
    rgb[0, 0] = (100, 0, 0)
    rgb[0, 1] = (100, 0, 0)  # (100, 0, 0) now has 2 pixels and comes first
    with pytest.raises(UnknownColorsError) as info:
        rgb_to_index(rgb, ls)
    msg = str(info.value)
    assert msg.startswith("29 colour(s) in 30 pixel(s) are not in label set 'test'")
    assert "(100, 0, 0) x 2, " in msg
    assert len(re.findall(r"\) x \d+", msg)) == 20
    assert "and 9 more" in msg
    assert len(info.value.counts) == 29
    assert info.value.counts[0] == ((100, 0, 0), 2)
    assert isinstance(info.value, LabelConversionError)


def test_rgb_to_index_known_values() -> None:
    ls = preset("camvid11")
    rgb = np.array([[[128, 128, 128], [0, 0, 0]], [[60, 40, 222], [0, 128, 192]]], dtype=np.uint8)
    np.testing.assert_array_equal(rgb_to_index(rgb, ls), [[0, 255], [4, 10]])


def test_rgba_alpha_is_ignored() -> None:
    ls = preset("voc")
    index = np.array([[0, 15, 255], [20, 1, 2]], dtype=np.uint8)
    rgb = index_to_rgb(index, ls)
    rgba = np.concatenate([rgb, np.array([[[0], [7], [255]], [[1], [2], [3]]], np.uint8)], axis=2)
    np.testing.assert_array_equal(rgb_to_index(rgba, ls), index)


def test_non_contiguous_inputs() -> None:
    ls = preset("cityscapes")
    rng = np.random.default_rng(1)
    index = rng.integers(0, 19, (40, 50)).astype(np.uint8)
    index[::7] = UNLABELED
    rgb = index_to_rgb(index, ls)
    view = rgb[::2, ::-3]
    np.testing.assert_array_equal(rgb_to_index(view, ls), index[::2, ::-3])
    np.testing.assert_array_equal(index_to_rgb(index.T, ls), rgb.transpose(1, 0, 2))
    bgr_view = rgb[..., ::-1][..., ::-1]  # negative channel stride
    np.testing.assert_array_equal(rgb_to_index(bgr_view, ls), index)


def test_empty_images() -> None:
    ls = preset("voc")
    assert rgb_to_index(np.zeros((0, 4, 3), np.uint8), ls).shape == (0, 4)
    assert index_to_rgb(np.zeros((3, 0), np.uint8), ls).shape == (3, 0, 3)
    assert remap_void(np.zeros((0, 0), np.uint8), 11).shape == (0, 0)


@pytest.mark.parametrize(
    ("rgb", "pattern"),
    [
        (np.zeros((4, 4), np.uint8), r"shape \(H, W, 3\) or \(H, W, 4\)"),
        (np.zeros((4, 4, 2), np.uint8), r"shape"),
        (np.zeros((2, 4, 4, 3), np.uint8), r"shape"),
        (np.zeros((4, 4, 3), np.uint16), "dtype uint8, got uint16"),
        (np.zeros((4, 4, 3), np.float32), "dtype uint8, got float32"),
        ([[[0, 0, 0]]], "numpy array"),
    ],
)
def test_rgb_to_index_rejects_bad_input(rgb: object, pattern: str) -> None:
    with pytest.raises(LabelConversionError, match=pattern):
        rgb_to_index(rgb, preset("voc"))  # type: ignore[arg-type]


def test_bad_unknown_mode() -> None:
    with pytest.raises(LabelConversionError, match="unknown="):
        rgb_to_index(np.zeros((1, 1, 3), np.uint8), preset("voc"), unknown="ignore")  # type: ignore[arg-type]
    with pytest.raises(LabelConversionError, match="unknown="):
        index_to_rgb(np.zeros((1, 1), np.uint8), preset("voc"), unknown="drop")  # type: ignore[arg-type]


def test_lut_is_cached_per_palette() -> None:
    from segstudio.core import convert

    a, b = make_set([(1, 2, 3)]), make_set([(1, 2, 3)], unlabeled=(9, 9, 9))
    rgb = np.array([[[1, 2, 3]]], np.uint8)
    rgb_to_index(rgb, a)
    before = convert._rgb_lut.cache_info().hits
    rgb_to_index(rgb, b)  # same class colours -> same table
    assert convert._rgb_lut.cache_info().hits == before + 1
    assert not convert._rgb_lut(((1, 2, 3),)).flags.writeable


# ------------------------------------------------------------- index -> rgb


def test_index_to_rgb_unknown_indices() -> None:
    ls = make_set([(1, 1, 1), (2, 2, 2)], unlabeled=(9, 9, 9))
    index = np.array([[0, 1, 2, 2, 255, 7]], dtype=np.uint8)
    with pytest.raises(UnknownIndicesError) as info:
        index_to_rgb(index, ls)
    assert info.value.counts == ((2, 2), (7, 1))
    assert "2 x 2, 7 x 1" in str(info.value)
    assert "label set 'test'" in str(info.value)
    rgb = index_to_rgb(index, ls, unknown="unlabeled")
    assert rgb[0].tolist() == [[1, 1, 1], [2, 2, 2], [9, 9, 9], [9, 9, 9], [9, 9, 9], [9, 9, 9]]


@pytest.mark.parametrize(
    ("index", "pattern"),
    [
        (np.zeros((2, 2), np.int32), r"dtype uint8.*got int32"),
        (np.zeros((2, 2, 1), np.uint8), r"2-D"),
        (np.zeros(4, np.uint8), r"2-D"),
        ([[0]], "numpy array"),
    ],
)
def test_index_to_rgb_rejects_bad_input(index: object, pattern: str) -> None:
    with pytest.raises(LabelConversionError, match=pattern):
        index_to_rgb(index, preset("voc"))  # type: ignore[arg-type]


def test_full_label_set_of_255_classes() -> None:
    colors = [to_rgb(0x010101 * (i + 1)) for i in range(255)]
    ls = make_set(colors, unlabeled=(0, 0, 0))
    index = np.arange(256, dtype=np.uint8).reshape(16, 16)
    np.testing.assert_array_equal(rgb_to_index(index_to_rgb(index, ls), ls), index)


# ------------------------------------------------------------ check / remap


def test_check_index_map() -> None:
    index = np.array([[0, 1, 10, 11, 255, 12, 12, 40]], dtype=np.uint8)
    with pytest.raises(UnknownIndicesError) as info:
        check_index_map(index, 11)
    assert info.value.counts == ((12, 2), (11, 1), (40, 1))
    assert re.search(r"3 value\(s\).*0\.\.10.*12 x 2, 11 x 1, 40 x 1", str(info.value))
    with pytest.raises(UnknownIndicesError) as info:
        check_index_map(index, 11, void=11)
    assert info.value.counts == ((12, 2), (40, 1))
    check_index_map(index, 41, void=None)
    check_index_map(np.array([[0, 1, 255]], np.uint8), 2)


@pytest.mark.parametrize("num_classes", [0, 256, -3, 2.0, True])
def test_check_index_map_bad_num_classes(num_classes: object) -> None:
    with pytest.raises(LabelConversionError, match="num_classes"):
        check_index_map(np.zeros((2, 2), np.uint8), num_classes)  # type: ignore[arg-type]


def test_remap_void() -> None:
    index = np.array([[0, 11, 3], [11, 255, 12]], dtype=np.uint8)
    out = remap_void(index, 11)
    np.testing.assert_array_equal(out, [[0, 255, 3], [255, 255, 12]])
    assert out.dtype == np.uint8
    assert index[0, 1] == 11  # input untouched
    np.testing.assert_array_equal(remap_void(index, 255), index)
    np.testing.assert_array_equal(remap_void(index[:, ::-1], 11), out[:, ::-1])
    for bad in (-1, 256, 1.5, None):
        with pytest.raises(LabelConversionError, match="void"):
            remap_void(index, bad)  # type: ignore[arg-type]
