"""Reading images of every supported kind, refusing bad files, label maps in and out."""

from __future__ import annotations

import dataclasses
import os
import pickle
import struct
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image, ImageFile, ImageOps

from segstudio.core.errors import (
    CorruptImageError,
    EmptyImageError,
    ImageNotFoundError,
    ImageReadError,
    ImageTooLargeError,
    LabelReadError,
    UnsupportedImageError,
)
from segstudio.io.images import (
    IMAGE_SUFFIXES,
    MAX_PIXELS,
    LoadedImage,
    list_images,
    read_image,
    read_label_map,
    write_label_map,
    write_rgb,
)

RNG = np.random.default_rng(1234)
ORIENTATION = 0x0112


# --------------------------------------------------------------------------- helpers


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


def exif_with_orientation(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    return exif.tobytes()


def assert_names_file(exc: pytest.ExceptionInfo[ImageReadError], path: Path) -> None:
    assert path.name in str(exc.value)
    assert exc.value.path == str(path)


# --------------------------------------------------------------------------- list_images


def test_list_images_natural_order_filters_and_skips_hidden(tmp_path: Path) -> None:
    for name in ["img10.png", "img2.PNG", "img1.jpg", "b.TIFF", "c.webp", "a.bmp", "z.jpeg"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / ".hidden.png").write_bytes(b"x")
    (tmp_path / "notes.txt").write_bytes(b"x")
    (tmp_path / "folder.png").mkdir()
    names = [p.name for p in list_images(tmp_path)]
    assert names == ["a.bmp", "b.TIFF", "c.webp", "img1.jpg", "img2.PNG", "img10.png", "z.jpeg"]
    assert all(p.parent == tmp_path for p in list_images(str(tmp_path)))


def test_list_images_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ImageNotFoundError, match="no such folder") as exc:
        list_images(tmp_path / "absent")
    assert "absent" in str(exc.value)


def test_list_images_file_instead_of_folder(tmp_path: Path) -> None:
    f = tmp_path / "one.png"
    f.write_bytes(b"x")
    with pytest.raises(ImageReadError, match="not a folder"):
        list_images(f)


def test_suffix_constant() -> None:
    assert IMAGE_SUFFIXES == (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
    assert MAX_PIXELS == 40_000 * 40_000


# --------------------------------------------------------------------------- formats


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


def test_format_is_told_by_content_not_suffix(tmp_path: Path) -> None:
    rgb = random_rgb()
    path = tmp_path / "actually_png.jpg"
    Image.fromarray(rgb).save(path, format="PNG")
    np.testing.assert_array_equal(read_image(path).rgb, rgb)


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


def _palette_image() -> tuple[np.ndarray, np.ndarray, Image.Image]:
    index = RNG.integers(0, 5, (10, 12), dtype=np.uint8)
    palette = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255], [9, 99, 199]], np.uint8)
    im = Image.fromarray(index)
    im.putpalette(palette.tobytes())
    return index, palette, im


def test_palette_image_gives_colours_and_raw_indices(tmp_path: Path) -> None:
    index, palette, im = _palette_image()
    path = tmp_path / "p.png"
    im.save(path)
    loaded = read_image(path)
    assert loaded.mode == "P" and not loaded.has_alpha
    np.testing.assert_array_equal(loaded.raw, index)
    np.testing.assert_array_equal(loaded.rgb, palette[index])


def test_palette_with_transparency(tmp_path: Path) -> None:
    index, palette, im = _palette_image()
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


def _ramp16() -> np.ndarray:
    return (np.arange(40 * 50, dtype=np.uint32).reshape(40, 50) * 13 + 1000).astype(np.uint16)


def _assert_stretched(rgb: np.ndarray, raw2d: np.ndarray) -> None:
    """A monotonic map onto the full 0..255 range, identical in the three channels."""
    assert rgb.dtype == np.uint8 and rgb.shape == (*raw2d.shape, 3)
    np.testing.assert_array_equal(rgb[..., 0], rgb[..., 1])
    np.testing.assert_array_equal(rgb[..., 0], rgb[..., 2])
    order = np.argsort(raw2d, axis=None, kind="stable")
    assert np.all(np.diff(rgb[..., 0].ravel()[order].astype(int)) >= 0)
    assert rgb.min() == 0 and rgb.max() == 255


def test_sixteen_bit_gray_png(tmp_path: Path) -> None:
    raw = _ramp16()
    path = tmp_path / "g16.png"
    Image.fromarray(raw).save(path)
    loaded = read_image(path)
    assert loaded.mode == "I;16" and loaded.bit_depth == 16
    assert loaded.raw.dtype == np.uint16
    np.testing.assert_array_equal(loaded.raw, raw)
    _assert_stretched(loaded.rgb, raw)


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


def test_sixteen_bit_tiff(tmp_path: Path) -> None:
    raw = _ramp16()
    path = tmp_path / "g16.tif"
    tifffile.imwrite(path, raw)
    loaded = read_image(path)
    assert loaded.mode == "tiff uint16" and loaded.bit_depth == 16
    np.testing.assert_array_equal(loaded.raw, raw)
    _assert_stretched(loaded.rgb, raw)


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
    _assert_stretched(loaded.rgb, raw)


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


def test_constant_image_gives_zeros(tmp_path: Path) -> None:
    path = tmp_path / "c.tif"
    tifffile.imwrite(path, np.full((8, 9), 12345, np.uint16))
    assert not read_image(path).rgb.any()
    path2 = tmp_path / "nan.tif"
    tifffile.imwrite(path2, np.full((8, 9), np.nan, np.float32))
    assert not read_image(path2).rgb.any()


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
    raw = _ramp16()
    path = tmp_path / "lzw.tif"
    Image.fromarray(raw).save(path, compression="tiff_lzw")
    loaded = read_image(path)
    np.testing.assert_array_equal(loaded.raw, raw)


# --------------------------------------------------------------------------- orientation


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
    raw = _ramp16()
    path = tmp_path / "o16.png"
    Image.fromarray(raw).save(path, exif=exif_with_orientation(8))
    loaded = read_image(path)
    np.testing.assert_array_equal(loaded.raw, np.rot90(raw, 1))


def test_tiff_orientation_tag(tmp_path: Path) -> None:
    gray = RNG.integers(0, 256, (6, 10), dtype=np.uint8)
    path = tmp_path / "o.tif"
    tifffile.imwrite(path, gray, extratags=[(ORIENTATION, "H", 1, 6, True)])
    np.testing.assert_array_equal(read_image(path).raw, np.rot90(gray, -1))


# --------------------------------------------------------------------------- bad files


def _good_png(tmp_path: Path) -> Path:
    path = tmp_path / "good.png"
    Image.fromarray(random_rgb(64, 64)).save(path)
    return path


def _truncate(path: Path, keep: float) -> Path:
    data = path.read_bytes()
    cut = path.with_name("cut_" + path.name)
    cut.write_bytes(data[: int(len(data) * keep)])
    return cut


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


def test_png_signature_with_garbage(tmp_path: Path) -> None:
    path = tmp_path / "sig.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + RNG.bytes(100))
    with pytest.raises(CorruptImageError) as exc:
        read_image(path)
    assert_names_file(exc, path)


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.99])
def test_truncated_png(tmp_path: Path, keep: float) -> None:
    path = _truncate(_good_png(tmp_path), keep)
    with pytest.raises(CorruptImageError, match="truncated") as exc:
        read_image(path)
    assert_names_file(exc, path)


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_jpeg(tmp_path: Path, keep: float) -> None:
    full = tmp_path / "photo.jpg"
    Image.fromarray(random_rgb(64, 64)).save(full, quality=90)
    path = _truncate(full, keep)
    with pytest.raises(CorruptImageError, match="truncated") as exc:
        read_image(path)
    assert_names_file(exc, path)


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_truncated_tiff(tmp_path: Path, compression: str | None) -> None:
    full = tmp_path / "scan.tif"
    tifffile.imwrite(full, _ramp16(), compression=compression)
    for keep in (0.05, 0.5, 0.9):
        path = _truncate(full, keep)
        with pytest.raises(CorruptImageError) as exc:
            read_image(path)
        assert_names_file(exc, path)


def test_too_many_pixels_for_a_lowered_limit(tmp_path: Path) -> None:
    path = _good_png(tmp_path)  # 64 x 64 = 4096 pixels
    with pytest.raises(ImageTooLargeError, match=r"64 x 64 = 4,096 pixels") as exc:
        read_image(path, max_pixels=4095)
    assert_names_file(exc, path)
    assert read_image(path, max_pixels=4096).shape == (64, 64)


def test_too_many_pixels_tiff(tmp_path: Path) -> None:
    path = tmp_path / "big.tif"
    tifffile.imwrite(path, _ramp16())
    with pytest.raises(ImageTooLargeError) as exc:
        read_image(path, max_pixels=100)
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
    path = _good_png(tmp_path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 2x is below 4096 pixels
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_image(path).shape == (64, 64)
    assert Image.MAX_IMAGE_PIXELS == 1000
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_more_than_four_channels_is_unsupported(tmp_path: Path) -> None:
    path = tmp_path / "five.tif"
    data = RNG.integers(0, 256, (8, 9, 5), dtype=np.uint8)
    tifffile.imwrite(path, data, photometric="minisblack", planarconfig="contig")
    with pytest.raises(UnsupportedImageError, match="5 channels") as exc:
        read_image(path)
    assert_names_file(exc, path)


def test_errors_survive_pickling() -> None:
    err = CorruptImageError("/x/y.png", "truncated")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is CorruptImageError
    assert (back.path, back.fault, str(back)) == (err.path, err.fault, str(err))


# --------------------------------------------------------------------------- LoadedImage


def test_loaded_image_is_frozen(tmp_path: Path) -> None:
    loaded = read_image(_good_png(tmp_path))
    with pytest.raises(dataclasses.FrozenInstanceError):
        loaded.mode = "L"  # type: ignore[misc]
    assert "good.png" in repr(loaded) and "array" not in repr(loaded)


def test_eight_bit_rgb_shares_raw(tmp_path: Path) -> None:
    loaded = read_image(_good_png(tmp_path))
    assert loaded.raw is loaded.rgb


# --------------------------------------------------------------------------- label maps


def test_label_map_round_trip_mode_l(tmp_path: Path) -> None:
    index = np.arange(256, dtype=np.uint8).reshape(16, 16)
    path = tmp_path / "labels.png"
    write_label_map(path, index)
    with Image.open(path) as im:
        assert im.mode == "L"
    out = read_label_map(path)
    assert out.dtype == np.uint8 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, index)
    assert os.listdir(tmp_path) == ["labels.png"]


def test_label_map_round_trip_mode_p_keeps_indices(tmp_path: Path) -> None:
    index = np.array([[0, 1, 2, 255], [3, 3, 0, 255]], np.uint8)
    palette = np.array([[10, 20, 30], [200, 0, 0], [0, 200, 0], [0, 0, 200]], np.uint8)
    path = tmp_path / "labels.png"
    write_label_map(path, index, palette=palette)
    with Image.open(path) as im:
        assert im.mode == "P"
        np.testing.assert_array_equal(np.asarray(im), index)
        assert im.getpalette()[:12] == palette.ravel().tolist()
    np.testing.assert_array_equal(read_label_map(path), index)
    # read_image shows the palette colours for the same file.
    np.testing.assert_array_equal(read_image(path).rgb[0, 1], palette[1])


def test_label_map_reads_external_palette_png(tmp_path: Path) -> None:
    index, _, im = _palette_image()
    path = tmp_path / "voc_style.png"
    im.save(path)
    np.testing.assert_array_equal(read_label_map(path), index)


def test_rgb_label_image_is_refused_with_help(tmp_path: Path) -> None:
    path = tmp_path / "colour_labels.png"
    Image.fromarray(blocky_rgb()).save(path)
    with pytest.raises(LabelReadError, match="colour-coded") as exc:
        read_label_map(path)
    assert_names_file(exc, path)
    assert "palette" in str(exc.value)


def test_gray_saved_as_rgb_label_is_accepted(tmp_path: Path) -> None:
    index = RNG.integers(0, 12, (8, 9), dtype=np.uint8)
    path = tmp_path / "gray_rgb.png"
    Image.fromarray(np.repeat(index[..., None], 3, axis=2)).save(path)
    np.testing.assert_array_equal(read_label_map(path), index)


def test_sixteen_bit_label_within_range_accepted(tmp_path: Path) -> None:
    index = RNG.integers(0, 256, (8, 9)).astype(np.uint16)
    path = tmp_path / "l16.png"
    Image.fromarray(index).save(path)
    out = read_label_map(path)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, index)


def test_sixteen_bit_label_out_of_range_refused(tmp_path: Path) -> None:
    index = np.full((8, 9), 3, np.uint16)
    index[0, 0] = 300
    path = tmp_path / "l16big.png"
    Image.fromarray(index).save(path)
    with pytest.raises(LabelReadError, match="300") as exc:
        read_label_map(path)
    assert_names_file(exc, path)


def test_transparent_label_image_refused(tmp_path: Path) -> None:
    la = np.zeros((4, 5, 2), np.uint8)
    la[..., 1] = 255
    la[0, 0, 1] = 0
    path = tmp_path / "la.png"
    Image.fromarray(la, "LA").save(path)
    with pytest.raises(LabelReadError, match="transparent"):
        read_label_map(path)


def test_label_map_bad_file_raises_image_read_error(tmp_path: Path) -> None:
    path = tmp_path / "missing.png"
    with pytest.raises(ImageNotFoundError):
        read_label_map(path)


@pytest.mark.parametrize(
    ("index", "kwargs", "message"),
    [
        (np.zeros((4, 4), np.int32), {}, "uint8"),
        (np.zeros((4, 4), np.float32), {}, "uint8"),
        (np.zeros((4, 4, 3), np.uint8), {}, "2 dimensions"),
        (np.zeros((0, 4), np.uint8), {}, "empty"),
        ([[0, 1]], {}, "numpy array"),
        (np.zeros((4, 4), np.uint8), {"palette": np.zeros((256, 4), np.uint8)}, "palette"),
        (np.zeros((4, 4), np.uint8), {"palette": np.zeros((300, 3), np.uint8)}, "palette"),
        (np.zeros((4, 4), np.uint8), {"palette": np.zeros((256, 3), np.int64)}, "palette"),
    ],
)
def test_write_label_map_validates(
    tmp_path: Path, index: object, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        write_label_map(tmp_path / "x.png", index, **kwargs)  # type: ignore[arg-type]
    assert os.listdir(tmp_path) == []


def test_write_label_map_requires_png_suffix(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.png"):
        write_label_map(tmp_path / "x.tif", np.zeros((2, 2), np.uint8))


def test_failed_label_write_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "labels.png"
    old = np.full((3, 3), 7, np.uint8)
    write_label_map(path, old)

    def failing_save(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
        # a half-written file, whether the encoder is given a path or a buffer
        if hasattr(fp, "write"):
            fp.write(b"\x89PNG half")
        else:
            Path(fp).write_bytes(b"\x89PNG half")  # type: ignore[arg-type]
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        write_label_map(path, np.zeros((3, 3), np.uint8))
    monkeypatch.undo()
    np.testing.assert_array_equal(read_label_map(path), old)
    assert os.listdir(tmp_path) == ["labels.png"]


def test_write_rgb_round_trip(tmp_path: Path) -> None:
    rgb = random_rgb()
    path = tmp_path / "out.png"
    write_rgb(path, rgb[:, ::-1])  # non-contiguous input is fine
    np.testing.assert_array_equal(read_image(path).rgb, rgb[:, ::-1])
    assert os.listdir(tmp_path) == ["out.png"]


@pytest.mark.parametrize(
    "bad",
    [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 4), np.uint8), np.zeros((4, 4, 3), np.uint16)],
)
def test_write_rgb_validates(tmp_path: Path, bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        write_rgb(tmp_path / "x.png", bad)


def test_read_thumbnail_sizes_and_errors(tmp_path: Path) -> None:
    from segstudio.io.images import read_thumbnail

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
