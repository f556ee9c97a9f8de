"""Orientation from EXIF (PNG, JPEG) and the TIFF tag, applied to rgb and raw
(segstudio.io.images.exif)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageOps

from segstudio.io.images import read_image
from tests.unit.io.images.samples import RNG, blocky_rgb, ramp16, random_rgb

ORIENTATION = 0x0112


def exif_with_orientation(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    return exif.tobytes()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow_exif_transpose(tmp_path: Path, orientation: int) -> None:
    rgb = random_rgb(6, 10)
    path = tmp_path / f"o{orientation}.png"
    Image.fromarray(rgb).save(path, exif=exif_with_orientation(orientation))
    with Image.open(path) as im:
        expected = np.asarray(ImageOps.exif_transpose(im))
    loaded = read_image(path)
    np.testing.assert_array_equal(loaded.rgb, expected)
    assert loaded.rgb.flags.c_contiguous


def test_jpeg_orientation_6_rotates_clockwise(tmp_path: Path) -> None:
    rgb = blocky_rgb()  # 32 x 48
    path = tmp_path / "rot.jpg"
    Image.fromarray(rgb).save(path, quality=95, subsampling=0, exif=exif_with_orientation(6))
    loaded = read_image(path)
    assert loaded.shape == (48, 32)
    expected = np.rot90(rgb, -1)  # 90 degrees clockwise
    assert np.abs(loaded.rgb.astype(int) - expected).mean() < 4
    # The top-left (red) quadrant of the stored image is now top-right.
    assert tuple(loaded.rgb[5, 28]) == pytest.approx((255, 0, 0), abs=12)


def test_orientation_applies_to_raw_of_sixteen_bit(tmp_path: Path) -> None:
    raw = ramp16()
    path = tmp_path / "o16.png"
    Image.fromarray(raw).save(path, exif=exif_with_orientation(8))
    loaded = read_image(path)
    np.testing.assert_array_equal(loaded.raw, np.rot90(raw, 1))


def test_tiff_orientation_tag(tmp_path: Path) -> None:
    gray = RNG.integers(0, 256, (6, 10), dtype=np.uint8)
    path = tmp_path / "o.tif"
    tifffile.imwrite(path, gray, extratags=[(ORIENTATION, "H", 1, 6, True)])
    np.testing.assert_array_equal(read_image(path).raw, np.rot90(gray, -1))
