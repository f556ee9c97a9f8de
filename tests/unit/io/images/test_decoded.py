"""The pixel limit, checked from the header of every kind of file (segstudio.io.images.decoded)."""

from __future__ import annotations

from pathlib import Path

import pytest
import tifffile

from segstudio.core.errors import ImageTooLargeError
from segstudio.io.images import read_image
from tests.unit.io.images.samples import assert_names_file, good_png, ramp16


def test_too_many_pixels_for_a_lowered_limit(tmp_path: Path) -> None:
    path = good_png(tmp_path)  # 64 x 64 = 4096 pixels
    with pytest.raises(ImageTooLargeError, match=r"64 x 64 = 4,096 pixels") as exc:
        read_image(path, max_pixels=4095)
    assert_names_file(exc, path)
    assert read_image(path, max_pixels=4096).shape == (64, 64)


def test_too_many_pixels_tiff(tmp_path: Path) -> None:
    path = tmp_path / "big.tif"
    tifffile.imwrite(path, ramp16())
    with pytest.raises(ImageTooLargeError) as exc:
        read_image(path, max_pixels=100)
    assert_names_file(exc, path)
