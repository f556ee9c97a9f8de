"""How each kind of file becomes the 8-bit rgb array: channels, palettes, the contrast stretch
(segstudio.io.images.tone)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from segstudio.io.images import read_image
from tests.unit.io.images.samples import RNG, assert_stretched, palette_image, ramp16


def test_grayscale_is_replicated(tmp_path: Path) -> None:
    gray = RNG.integers(0, 256, (10, 12), dtype=np.uint8)
    path = tmp_path / "g.png"
    Image.fromarray(gray).save(path)
    loaded = read_image(path)
    assert loaded.mode == "L"
    np.testing.assert_array_equal(loaded.raw, gray)
    for c in range(3):
        np.testing.assert_array_equal(loaded.rgb[..., c], gray)


def test_rgba_drops_alpha_from_rgb_keeps_it_in_raw(tmp_path: Path) -> None:
    rgba = RNG.integers(0, 256, (10, 12, 4), dtype=np.uint8)
    path = tmp_path / "a.png"
    Image.fromarray(rgba, "RGBA").save(path)
    loaded = read_image(path)
    assert loaded.mode == "RGBA" and loaded.has_alpha
    np.testing.assert_array_equal(loaded.raw, rgba)
    np.testing.assert_array_equal(loaded.rgb, rgba[..., :3])
    assert loaded.rgb.flags.c_contiguous


def test_la_gray_with_alpha(tmp_path: Path) -> None:
    la = RNG.integers(0, 256, (10, 12, 2), dtype=np.uint8)
    path = tmp_path / "la.png"
    Image.fromarray(la, "LA").save(path)
    loaded = read_image(path)
    assert loaded.mode == "LA" and loaded.has_alpha
    assert loaded.raw.shape == (10, 12, 2)
    np.testing.assert_array_equal(loaded.rgb, np.repeat(la[..., :1], 3, axis=2))


def test_palette_image_gives_colours_and_raw_indices(tmp_path: Path) -> None:
    index, palette, im = palette_image()
    path = tmp_path / "p.png"
    im.save(path)
    loaded = read_image(path)
    assert loaded.mode == "P" and not loaded.has_alpha
    np.testing.assert_array_equal(loaded.raw, index)
    np.testing.assert_array_equal(loaded.rgb, palette[index])


def test_sixteen_bit_gray_png(tmp_path: Path) -> None:
    raw = ramp16()
    path = tmp_path / "g16.png"
    Image.fromarray(raw).save(path)
    loaded = read_image(path)
    assert loaded.mode == "I;16" and loaded.bit_depth == 16
    assert loaded.raw.dtype == np.uint16
    np.testing.assert_array_equal(loaded.raw, raw)
    assert_stretched(loaded.rgb, raw)


def test_sixteen_bit_stretch_is_robust_to_outliers(tmp_path: Path) -> None:
    raw = np.full((100, 100), 1000, np.uint16)
    raw[:, 50:] = 2000
    raw[0, 0] = 65535  # one hot pixel must not squash the contrast
    path = tmp_path / "hot.tif"
    tifffile.imwrite(path, raw)
    rgb = read_image(path).rgb
    assert rgb[50, 10, 0] == 0
    assert rgb[50, 60, 0] == 255


def test_float32_tiff_with_nan_and_inf(tmp_path: Path) -> None:
    raw = np.linspace(-1.0, 1.0, 30 * 40, dtype=np.float32).reshape(30, 40)
    raw[0, 0] = np.nan
    raw[0, 1] = np.inf
    raw[0, 2] = -np.inf
    path = tmp_path / "f.tif"
    tifffile.imwrite(path, raw)
    loaded = read_image(path)
    assert loaded.mode == "tiff float32" and loaded.bit_depth == 32
    assert loaded.raw.dtype == np.float32
    np.testing.assert_array_equal(loaded.raw, raw)  # NaN == NaN here
    assert loaded.rgb[0, 0, 0] == loaded.rgb[0, 1, 0] == loaded.rgb[0, 2, 0] == 0
    assert loaded.rgb[-1, -1, 0] == 255
    assert loaded.rgb[15, 0, 0] > 100  # near the middle of the ramp


def test_float_pil_mode_f(tmp_path: Path) -> None:
    raw = np.linspace(0, 5, 20 * 30, dtype=np.float32).reshape(20, 30)
    path = tmp_path / "f.tiff"
    Image.fromarray(raw).save(path)  # Pillow writes mode F as a float TIFF
    loaded = read_image(path)
    np.testing.assert_array_equal(loaded.raw, raw)
    assert loaded.rgb[-1, -1, 0] == 255 and loaded.rgb[0, 0, 0] == 0


@pytest.mark.parametrize("dtype", [np.int32, np.int16, np.uint32, np.float64])
def test_other_numeric_tiffs_are_stretched(tmp_path: Path, dtype: type) -> None:
    raw = (np.arange(20 * 30).reshape(20, 30) - 300).astype(dtype)
    path = tmp_path / "n.tif"
    tifffile.imwrite(path, raw)
    loaded = read_image(path)
    assert loaded.raw.dtype == dtype
    np.testing.assert_array_equal(loaded.raw, raw)
    assert_stretched(loaded.rgb, raw)


def test_constant_image_gives_zeros(tmp_path: Path) -> None:
    path = tmp_path / "c.tif"
    tifffile.imwrite(path, np.full((8, 9), 12345, np.uint16))
    assert not read_image(path).rgb.any()
    path2 = tmp_path / "nan.tif"
    tifffile.imwrite(path2, np.full((8, 9), np.nan, np.float32))
    assert not read_image(path2).rgb.any()
