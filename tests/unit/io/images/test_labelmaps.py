"""Label maps in and out, and RGB PNGs out (segstudio.io.images.labelmaps)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.core.errors import ImageNotFoundError, LabelReadError
from segstudio.io.images import read_image, read_label_map, write_label_map, write_rgb
from tests.unit.io.images.samples import (
    RNG,
    assert_names_file,
    blocky_rgb,
    palette_image,
    random_rgb,
)


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
    index, _, im = palette_image()
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
