"""Reading a TIFF a band of rows at a time: the same pixels as reading it whole."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from segstudio.core.errors import CorruptImageError, ImageTooLargeError
from segstudio.io.images import read_image
from segstudio.io.images.bands import open_bands

H, W = 300, 410


def _rgb(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    ("kind", "layout"),
    [
        ("rgb", {"tile": (64, 128), "compression": "zlib"}),
        ("rgb", {"rowsperstrip": 37}),
        ("rgb", {"rowsperstrip": 1000, "compression": "lzma"}),  # one strip
        ("rgba", {"tile": (32, 32)}),
        ("gray", {"rowsperstrip": 50, "compression": "zlib"}),
    ],
)
def test_bands_equal_the_whole_image(tmp_path, kind, layout) -> None:
    pixels = _rgb()
    if kind == "rgba":
        pixels = np.dstack([pixels, np.full((H, W), 200, np.uint8)])
    elif kind == "gray":
        pixels = pixels[..., 0]
    path = tmp_path / "scan.tif"
    extra = {"extrasamples": ["unassalpha"]} if kind == "rgba" else {}
    photometric = "minisblack" if kind == "gray" else "rgb"
    tifffile.imwrite(path, pixels, photometric=photometric, **extra, **layout)
    whole = read_image(path).rgb
    with open_bands(path) as bands:
        assert bands.shape == (H, W, 3)
        for y0, y1 in [(0, H), (0, 1), (37, 74), (63, 65), (250, 300), (299, 300)]:
            band = bands.rows(y0, y1)
            assert band.dtype == np.uint8 and band.flags.c_contiguous
            np.testing.assert_array_equal(band, whole[y0:y1])
        with pytest.raises(ValueError, match="rows"):
            bands.rows(10, H + 1)


def test_files_that_need_a_whole_read_give_none(tmp_path) -> None:
    cases = {
        "planar.tif": (
            np.moveaxis(_rgb(), -1, 0),
            {"photometric": "rgb", "planarconfig": "separate"},
        ),
        "16bit.tif": (_rgb().astype(np.uint16) * 257, {"photometric": "rgb"}),
        "rotated.tif": (_rgb(), {"photometric": "rgb", "extratags": [(274, 3, 1, 6, True)]}),
        "pages.tif": (np.stack([_rgb(1), _rgb(2)]), {"photometric": "rgb"}),
    }
    for name, (pixels, kwargs) in cases.items():
        tifffile.imwrite(tmp_path / name, pixels, **kwargs)
        assert open_bands(tmp_path / name) is None, name
    from PIL import Image

    Image.fromarray(_rgb()).save(tmp_path / "lzw.tif", compression="tiff_lzw")  # needs imagecodecs
    assert open_bands(tmp_path / "lzw.tif") is None
    Image.fromarray(_rgb()).save(tmp_path / "photo.png")
    assert open_bands(tmp_path / "photo.png") is None
    assert open_bands(tmp_path / "missing.tif") is None  # read_image says what is wrong


def test_a_huge_tiff_is_refused_and_a_damaged_one_says_so(tmp_path) -> None:
    path = tmp_path / "scan.tif"
    tifffile.imwrite(path, _rgb(), photometric="rgb", tile=(64, 64), compression="zlib")
    with pytest.raises(ImageTooLargeError):
        open_bands(path, max_pixels=1000)
    data = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        first_of_row_2 = -(-W // 64)
        offset, count = page.dataoffsets[first_of_row_2], page.databytecounts[first_of_row_2]
    data[offset : offset + count] = b"\x00" * count  # a tile of rows 64..127 broken
    path.write_bytes(bytes(data))
    with open_bands(path) as bands:
        np.testing.assert_array_equal(bands.rows(0, 64).shape, (64, W, 3))
        with pytest.raises(CorruptImageError, match=r"scan\.tif"):
            bands.rows(60, 70)


def test_an_empty_chunk_reads_as_black_and_the_others_stay_in_place(tmp_path) -> None:
    """A tile with no data (offset and byte count 0) is left black, as read_image
    leaves it, and the tiles after it are read from their own offsets."""
    for layout in ({"tile": (64, 64)}, {"rowsperstrip": 40}):
        path = tmp_path / "holes.tif"
        tifffile.imwrite(path, _rgb(4), photometric="rgb", **layout)
        with tifffile.TiffFile(path, mode="r+b") as tif:
            page = tif.pages.first
            key = "TileOffsets" if "tile" in layout else "StripOffsets"
            counts = "TileByteCounts" if "tile" in layout else "StripByteCounts"
            offsets, sizes = list(page.tags[key].value), list(page.tags[counts].value)
            offsets[2], sizes[2] = 0, 0  # its old bytes stay in the file, unused
            page.tags[key].overwrite(offsets)
            page.tags[counts].overwrite(sizes)
        whole = read_image(path).rgb
        with open_bands(path) as bands:
            np.testing.assert_array_equal(bands.rows(0, H), whole)


def test_a_damaged_header_is_left_to_read_image(tmp_path) -> None:
    """Whatever the bytes, open_bands gives a reader, None, or an ImageReadError."""
    from segstudio.core.errors import ImageReadError

    clean = tmp_path / "clean.tif"
    tifffile.imwrite(clean, _rgb(5), photometric="rgb", tile=(64, 64), compression="zlib")
    data = clean.read_bytes()
    rng = np.random.default_rng(0)
    for i in range(150):
        broken = bytearray(data)
        for at in rng.integers(4, 400, 4):  # past the magic, in the header and first IFD
            broken[at] = int(rng.integers(0, 256))
        path = tmp_path / f"broken{i}.tif"
        path.write_bytes(bytes(broken))
        try:
            bands = open_bands(path)
        except ImageReadError:
            continue
        if bands is not None:
            bands.close()
