"""TIFF through tifffile: pages, planar data, two and four channels, the Pillow fallback
(segstudio.io.images.tiff)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from segstudio.core.errors import CorruptImageError, UnsupportedImageError
from segstudio.io.images import read_image
from tests.unit.io.images.samples import (
    RNG,
    assert_names_file,
    assert_stretched,
    ramp16,
    random_rgb,
    truncate,
)


def test_sixteen_bit_tiff(tmp_path: Path) -> None:
    raw = ramp16()
    path = tmp_path / "g16.tif"
    tifffile.imwrite(path, raw)
    loaded = read_image(path)
    assert loaded.mode == "tiff uint16" and loaded.bit_depth == 16
    np.testing.assert_array_equal(loaded.raw, raw)
    assert_stretched(loaded.rgb, raw)


def test_one_bit_tiff(tmp_path: Path) -> None:
    bits = RNG.random((9, 11)) > 0.5
    path = tmp_path / "b.tif"
    tifffile.imwrite(path, bits, photometric="minisblack")
    loaded = read_image(path)
    assert loaded.bit_depth == 1 and loaded.raw.dtype == np.bool_
    np.testing.assert_array_equal(loaded.rgb[..., 2], np.where(bits, 255, 0))
    # tifffile's default for bool is min-is-white (fax style): a set bit is black.
    tifffile.imwrite(path, bits)
    loaded = read_image(path)
    assert loaded.bit_depth == 1
    np.testing.assert_array_equal(loaded.rgb[..., 2], np.where(bits, 0, 255))


def test_multi_page_tiff_takes_first_page(tmp_path: Path) -> None:
    stack = RNG.integers(0, 256, (5, 16, 20), dtype=np.uint8)
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, stack)
    loaded = read_image(path)
    assert "page 1 of 5" in loaded.mode
    np.testing.assert_array_equal(loaded.raw, stack[0])
    np.testing.assert_array_equal(loaded.rgb[..., 1], stack[0])


@pytest.mark.parametrize(
    "layout",
    [
        {"photometric": "rgb", "planarconfig": "separate"},  # one planar page
        {"photometric": "minisblack"},  # three pages (tifffile's future default)
    ],
)
def test_channels_first_rgb_tiff_is_transposed(tmp_path: Path, layout: dict[str, str]) -> None:
    rgb = random_rgb(16, 20)
    path = tmp_path / "planar.tif"
    tifffile.imwrite(path, np.ascontiguousarray(rgb.transpose(2, 0, 1)), **layout)  # (3, H, W)
    loaded = read_image(path)
    assert "channels-first" in loaded.mode
    np.testing.assert_array_equal(loaded.rgb, rgb)
    np.testing.assert_array_equal(loaded.raw, rgb)


def test_two_channel_tiff_channels_first_is_red_green_composite(tmp_path: Path) -> None:
    chans = RNG.integers(0, 256, (2, 16, 20), dtype=np.uint8)
    path = tmp_path / "two.tif"
    tifffile.imwrite(path, chans)  # tifffile stores this as two pages
    loaded = read_image(path)
    assert loaded.mode == "tiff uint8 2ch channels-first"
    assert loaded.raw.shape == (16, 20, 2)
    np.testing.assert_array_equal(loaded.rgb[..., 0], chans[0])
    np.testing.assert_array_equal(loaded.rgb[..., 1], chans[1])
    assert not loaded.rgb[..., 2].any()
    assert not loaded.has_alpha


def test_two_channel_tiff_channels_last(tmp_path: Path) -> None:
    chans = RNG.integers(0, 65536, (16, 20, 2), dtype=np.uint16)
    for i, kw in enumerate([{}, {"photometric": "minisblack", "planarconfig": "contig"}]):
        path = tmp_path / f"two_last{i}.tif"
        tifffile.imwrite(path, chans, **kw)
        loaded = read_image(path)
        assert loaded.mode == "tiff uint16 2ch"
        np.testing.assert_array_equal(loaded.raw, chans)


def test_four_channel_tiff_alpha(tmp_path: Path) -> None:
    rgba = RNG.integers(0, 256, (8, 9, 4), dtype=np.uint8)
    path = tmp_path / "rgba.tif"
    tifffile.imwrite(path, rgba, photometric="rgb")  # tifffile marks the 4th as alpha
    loaded = read_image(path)
    assert loaded.has_alpha
    np.testing.assert_array_equal(loaded.rgb, rgba[..., :3])
    np.testing.assert_array_equal(loaded.raw, rgba)


def test_lzw_tiff_falls_back_to_pillow_when_needed(tmp_path: Path) -> None:
    raw = ramp16()
    path = tmp_path / "lzw.tif"
    Image.fromarray(raw).save(path, compression="tiff_lzw")
    loaded = read_image(path)
    np.testing.assert_array_equal(loaded.raw, raw)


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_truncated_tiff(tmp_path: Path, compression: str | None) -> None:
    full = tmp_path / "scan.tif"
    tifffile.imwrite(full, ramp16(), compression=compression)
    for keep in (0.05, 0.5, 0.9):
        path = truncate(full, keep)
        with pytest.raises(CorruptImageError) as exc:
            read_image(path)
        assert_names_file(exc, path)


def test_more_than_four_channels_is_unsupported(tmp_path: Path) -> None:
    path = tmp_path / "five.tif"
    data = RNG.integers(0, 256, (8, 9, 5), dtype=np.uint8)
    tifffile.imwrite(path, data, photometric="minisblack", planarconfig="contig")
    with pytest.raises(UnsupportedImageError, match="5 channels") as exc:
        read_image(path)
    assert_names_file(exc, path)
