"""read_image as a whole: format by content, file-level failures, LoadedImage, thumbnails
(segstudio.io.images.decode)."""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from segstudio.core.errors import (
    CorruptImageError,
    EmptyImageError,
    ImageNotFoundError,
    ImageReadError,
)
from segstudio.io.images import LoadedImage, read_image, read_thumbnail
from tests.unit.io.images.samples import RNG, assert_names_file, good_png, random_rgb


@pytest.mark.parametrize(
    ("suffix", "save"),
    [
        (".png", lambda im, p: im.save(p)),
        (".bmp", lambda im, p: im.save(p)),
        (".webp", lambda im, p: im.save(p, lossless=True)),
        (".tif", lambda im, p: tifffile.imwrite(p, np.asarray(im), photometric="rgb")),
        (".tiff", lambda im, p: im.save(p)),  # written by Pillow
    ],
)
def test_lossless_formats_round_trip(
    tmp_path: Path, suffix: str, save: Callable[[Image.Image, Path], None]
) -> None:
    rgb = random_rgb()
    path = tmp_path / f"img{suffix}"
    save(Image.fromarray(rgb), path)
    loaded = read_image(path)
    assert isinstance(loaded, LoadedImage)
    assert loaded.path == path
    assert loaded.rgb.dtype == np.uint8
    assert loaded.rgb.flags.c_contiguous
    np.testing.assert_array_equal(loaded.rgb, rgb)
    np.testing.assert_array_equal(loaded.raw, rgb)
    assert loaded.bit_depth == 8
    assert not loaded.has_alpha
    assert (loaded.height, loaded.width) == (24, 32)
    assert loaded.shape == (24, 32)


def test_format_is_told_by_content_not_suffix(tmp_path: Path) -> None:
    rgb = random_rgb()
    path = tmp_path / "actually_png.jpg"
    Image.fromarray(rgb).save(path, format="PNG")
    np.testing.assert_array_equal(read_image(path).rgb, rgb)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.png"
    with pytest.raises(ImageNotFoundError) as exc:
        read_image(path)
    assert_names_file(exc, path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(EmptyImageError, match="empty") as exc:
        read_image(path)
    assert_names_file(exc, path)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    path = tmp_path / "dir.png"
    path.mkdir()
    with pytest.raises(ImageNotFoundError, match="folder") as exc:
        read_image(path)
    assert_names_file(exc, path)


def test_random_bytes_with_png_suffix(tmp_path: Path) -> None:
    path = tmp_path / "noise.png"
    path.write_bytes(RNG.bytes(2000))
    with pytest.raises(CorruptImageError, match="not a PNG, JPEG") as exc:
        read_image(path)
    assert_names_file(exc, path)


def test_text_file_renamed_jpg(tmp_path: Path) -> None:
    path = tmp_path / "readme.jpg"
    path.write_text("this is not a picture\n" * 20)
    with pytest.raises(CorruptImageError) as exc:
        read_image(path)
    assert_names_file(exc, path)


def test_errors_survive_pickling() -> None:
    err = CorruptImageError("/x/y.png", "truncated")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is CorruptImageError
    assert (back.path, back.fault, str(back)) == (err.path, err.fault, str(err))


def test_loaded_image_is_frozen(tmp_path: Path) -> None:
    loaded = read_image(good_png(tmp_path))
    with pytest.raises(dataclasses.FrozenInstanceError):
        loaded.mode = "L"  # type: ignore[misc]
    assert "good.png" in repr(loaded) and "array" not in repr(loaded)


def test_eight_bit_rgb_shares_raw(tmp_path: Path) -> None:
    loaded = read_image(good_png(tmp_path))
    assert loaded.raw is loaded.rgb


def test_read_thumbnail_sizes_and_errors(tmp_path: Path) -> None:
    big = np.random.default_rng(0).integers(0, 256, (600, 800, 3), dtype=np.uint8)
    Image.fromarray(big).save(tmp_path / "a.jpg", quality=90)
    thumb = read_thumbnail(tmp_path / "a.jpg", 64)
    assert thumb.dtype == np.uint8 and thumb.ndim == 3 and max(thumb.shape[:2]) == 64
    wide16 = (np.arange(200 * 300, dtype=np.uint16).reshape(200, 300) * 7) % 65535
    Image.fromarray(wide16).save(tmp_path / "b.png")
    thumb = read_thumbnail(tmp_path / "b.png", 50)
    assert thumb.shape == (33, 50, 3) and thumb.max() > 0  # contrast-stretched, not black
    (tmp_path / "c.png").write_bytes(b"garbage")
    with pytest.raises(ImageReadError, match=r"c\.png"):
        read_thumbnail(tmp_path / "c.png")
