"""PNG, JPEG and other Pillow/OpenCV formats: fast paths, 16-bit colour PNG, truncation,
decompression bombs (segstudio.io.images.pillow)."""

from __future__ import annotations

import warnings
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFile

from segstudio.core.errors import CorruptImageError, ImageTooLargeError
from segstudio.io.images import read_image, read_label_map
from tests.unit.io.images.samples import (
    RNG,
    assert_names_file,
    blocky_rgb,
    good_png,
    palette_image,
    random_rgb,
    raw_png,
    truncate,
)


def test_jpeg_round_trip_matches_pillow(tmp_path: Path) -> None:
    rgb = blocky_rgb()
    path = tmp_path / "photo.jpg"
    Image.fromarray(rgb).save(path, quality=95, subsampling=0)
    loaded = read_image(path)
    assert loaded.mode == "RGB"
    assert loaded.rgb.shape == rgb.shape
    assert loaded.rgb.flags.c_contiguous and loaded.rgb.flags.writeable
    with Image.open(path) as im:
        pillow = np.asarray(im.convert("RGB"))
    assert np.abs(loaded.rgb.astype(int) - pillow).max() <= 1
    assert np.abs(loaded.rgb.astype(int) - rgb).mean() < 3


def test_jpeg_with_trailing_bytes_after_eoi_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "padded.jpg"
    Image.fromarray(blocky_rgb()).save(path, quality=95, subsampling=0)
    path.write_bytes(path.read_bytes() + b"\x00\x00trailing")
    assert read_image(path).rgb.shape == (32, 48, 3)


def test_palette_with_transparency(tmp_path: Path) -> None:
    index, palette, im = palette_image()
    path = tmp_path / "pt.png"
    im.save(path, transparency=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no Pillow "convert to RGBA" warnings either
        loaded = read_image(path)
    assert loaded.mode == "P" and loaded.has_alpha
    np.testing.assert_array_equal(loaded.rgb, palette[index])


def test_one_bit_image(tmp_path: Path) -> None:
    bits = RNG.random((9, 11)) > 0.5
    path = tmp_path / "b.png"
    Image.fromarray(bits).save(path)
    loaded = read_image(path)
    assert loaded.mode == "1" and loaded.bit_depth == 1
    assert loaded.raw.dtype == np.bool_
    np.testing.assert_array_equal(loaded.rgb[..., 0], np.where(bits, 255, 0))
    assert set(np.unique(loaded.rgb)) <= {0, 255}
    np.testing.assert_array_equal(loaded.raw, bits)
    np.testing.assert_array_equal(read_label_map(path), bits.astype(np.uint8))


def test_sixteen_bit_rgb_png_keeps_all_bits(tmp_path: Path) -> None:
    raw = RNG.integers(0, 65536, (10, 12, 3), dtype=np.uint16)
    path = tmp_path / "rgb16.png"
    assert cv2.imwrite(str(path), raw[..., ::-1])  # OpenCV writes BGR
    loaded = read_image(path)
    assert loaded.mode == "RGB;16" and loaded.bit_depth == 16 and not loaded.has_alpha
    np.testing.assert_array_equal(loaded.raw, raw)
    assert loaded.rgb.shape == (10, 12, 3) and loaded.rgb.dtype == np.uint8


def test_sixteen_bit_gray_alpha_png(tmp_path: Path) -> None:
    la = RNG.integers(0, 65536, (6, 7, 2), dtype=np.uint16)
    rows = b"".join(b"\x00" + la[y].astype(">u2").tobytes() for y in range(6))
    path = tmp_path / "la16.png"
    path.write_bytes(raw_png(7, 6, depth=16, color_type=4, idat=zlib.compress(rows)))
    loaded = read_image(path)
    assert loaded.mode == "LA;16" and loaded.has_alpha
    np.testing.assert_array_equal(loaded.raw, la)


def test_png_signature_with_garbage(tmp_path: Path) -> None:
    path = tmp_path / "sig.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + RNG.bytes(100))
    with pytest.raises(CorruptImageError) as exc:
        read_image(path)
    assert_names_file(exc, path)


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.99])
def test_truncated_png(tmp_path: Path, keep: float) -> None:
    path = truncate(good_png(tmp_path), keep)
    with pytest.raises(CorruptImageError, match="truncated") as exc:
        read_image(path)
    assert_names_file(exc, path)


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_jpeg(tmp_path: Path, keep: float) -> None:
    full = tmp_path / "photo.jpg"
    Image.fromarray(random_rgb(64, 64)).save(full, quality=90)
    path = truncate(full, keep)
    with pytest.raises(CorruptImageError, match="truncated") as exc:
        read_image(path)
    assert_names_file(exc, path)


def test_header_only_decompression_bomb_is_refused_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(raw_png(50_000, 50_000, idat=zlib.compress(b"\x00" * 100)))
    assert path.stat().st_size < 200

    def no_decoding(self: object) -> None:
        raise AssertionError("pixel data must not be decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    monkeypatch.setattr(cv2, "imdecode", no_decoding)
    with pytest.raises(ImageTooLargeError, match="50000 x 50000") as exc:
        read_image(path)
    assert_names_file(exc, path)


def test_pillow_global_limit_neither_used_nor_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = good_png(tmp_path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 2x is below 4096 pixels
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_image(path).shape == (64, 64)
    assert Image.MAX_IMAGE_PIXELS == 1000
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
