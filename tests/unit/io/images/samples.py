"""Test images for the segstudio.io.images tests: made in memory or written by hand."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.core.errors import ImageReadError

RNG = np.random.default_rng(1234)


def random_rgb(h: int = 24, w: int = 32) -> np.ndarray:
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def blocky_rgb() -> np.ndarray:
    """Four flat 16x16 quadrants of distinct colours: survives JPEG well."""
    img = np.zeros((32, 48, 3), np.uint8)
    img[:16, :24] = (255, 0, 0)
    img[:16, 24:] = (0, 255, 0)
    img[16:, :24] = (0, 0, 255)
    img[16:, 24:] = (255, 255, 255)
    return img


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def raw_png(width: int, height: int, *, depth: int = 8, color_type: int = 0, idat: bytes) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def assert_names_file(exc: pytest.ExceptionInfo[ImageReadError], path: Path) -> None:
    assert path.name in str(exc.value)
    assert exc.value.path == str(path)


def palette_image() -> tuple[np.ndarray, np.ndarray, Image.Image]:
    index = RNG.integers(0, 5, (10, 12), dtype=np.uint8)
    palette = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255], [9, 99, 199]], np.uint8)
    im = Image.fromarray(index)
    im.putpalette(palette.tobytes())
    return index, palette, im


def ramp16() -> np.ndarray:
    return (np.arange(40 * 50, dtype=np.uint32).reshape(40, 50) * 13 + 1000).astype(np.uint16)


def assert_stretched(rgb: np.ndarray, raw2d: np.ndarray) -> None:
    """A monotonic map onto the full 0..255 range, identical in the three channels."""
    assert rgb.dtype == np.uint8 and rgb.shape == (*raw2d.shape, 3)
    np.testing.assert_array_equal(rgb[..., 0], rgb[..., 1])
    np.testing.assert_array_equal(rgb[..., 0], rgb[..., 2])
    order = np.argsort(raw2d, axis=None, kind="stable")
    assert np.all(np.diff(rgb[..., 0].ravel()[order].astype(int)) >= 0)
    assert rgb.min() == 0 and rgb.max() == 255


def good_png(tmp_path: Path) -> Path:
    path = tmp_path / "good.png"
    Image.fromarray(random_rgb(64, 64)).save(path)
    return path


def truncate(path: Path, keep: float) -> Path:
    data = path.read_bytes()
    cut = path.with_name("cut_" + path.name)
    cut.write_bytes(data[: int(len(data) * keep)])
    return cut
