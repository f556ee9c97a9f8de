"""The pixel limit: derived from the memory available, overridable, checked from the header
before anything is decoded or read (segstudio.io.images.limits)."""

from __future__ import annotations

import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from segstudio.core.errors import ImageTooLargeError, UsageError
from segstudio.io.images import MAX_PIXELS_ENV, limits, pixel_limit, read_image, read_thumbnail
from segstudio.io.images import decode as decode_mod
from tests.unit.io.images.samples import assert_names_file, png_chunk

GB = 1_000_000_000


def header_only_png(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width x height`` and that holds no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IEND", b""))
    return path


@pytest.fixture
def memory(monkeypatch: pytest.MonkeyPatch) -> object:
    """Pretend the machine has a given amount of available memory (set ``.bytes``)."""

    class Memory:
        bytes: int | None = 16 * GB

    m = Memory()
    monkeypatch.delenv(MAX_PIXELS_ENV, raising=False)
    monkeypatch.setattr(limits, "available_memory", lambda: m.bytes)
    return m


def test_limit_follows_the_available_memory(memory) -> None:
    memory.bytes = 16 * GB
    assert pixel_limit() == int(16 * GB * limits.MEMORY_FRACTION) // limits.BYTES_PER_PIXEL
    memory.bytes = 4 * GB
    assert pixel_limit() == int(4 * GB * limits.MEMORY_FRACTION) // limits.BYTES_PER_PIXEL


def test_limit_has_a_floor_a_ceiling_and_a_fallback(memory) -> None:
    memory.bytes = 10_000_000  # 10 MB free: ordinary photos still open
    assert pixel_limit() == limits.PIXEL_FLOOR
    memory.bytes = 10_000 * GB
    assert pixel_limit() == limits.PIXEL_CEILING
    memory.bytes = None  # the system does not say
    assert pixel_limit() == limits.DEFAULT_WITHOUT_MEMORY_INFO


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2000000000", 2_000_000_000), ("2_000_000_000", 2_000_000_000),
     ("50000x50000", 2_500_000_000), (" 300 X 200 ", 60_000)],
)  # fmt: skip
def test_environment_variable_overrides_the_limit(
    memory, monkeypatch: pytest.MonkeyPatch, value: str, expected: int
) -> None:
    monkeypatch.setenv(MAX_PIXELS_ENV, value)
    assert pixel_limit() == expected


@pytest.mark.parametrize("value", ["lots", "0", "-5", "10x", "1e9"])
def test_a_bad_environment_variable_is_a_usage_error(
    memory, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(MAX_PIXELS_ENV, value)
    with pytest.raises(UsageError, match=MAX_PIXELS_ENV):
        pixel_limit()


def test_the_issues_40000_square_png_is_refused_on_a_16_gb_machine(memory, tmp_path: Path) -> None:
    # 40000 x 40000 passed the old fixed limit (40000 * 40000, checked with >) and
    # took 8.2 GB in predict, 14 GB in the window.
    path = header_only_png(tmp_path / "huge.png", 40_000, 40_000)
    with pytest.raises(ImageTooLargeError) as exc:
        read_image(path)
    assert_names_file(exc, path)
    message = str(exc.value)
    assert "40000 x 40000 = 1,600,000,000 pixels" in message
    assert f"{pixel_limit():,}" in message and "16.0 GB" in message
    assert f"{MAX_PIXELS_ENV}=40000x40000" in message
    assert "\n" not in message


def test_the_override_lets_a_big_image_through(memory, monkeypatch, tmp_path: Path) -> None:
    memory.bytes = GB // 4  # under the floor: the limit is 4096 x 4096
    path = tmp_path / "wide.png"
    Image.fromarray(np.zeros((8, 4096 * 4096 // 8 + 8), np.uint8)).save(path)
    with pytest.raises(ImageTooLargeError, match=r"only 0\.2 GB of memory"):
        read_image(path)
    monkeypatch.setenv(MAX_PIXELS_ENV, "3000000x8")
    assert read_image(path).shape == (8, 4096 * 4096 // 8 + 8)
    monkeypatch.setenv(MAX_PIXELS_ENV, "1000")
    with pytest.raises(ImageTooLargeError, match=f"set by {MAX_PIXELS_ENV}"):
        read_image(path)


def test_an_explicit_max_pixels_is_named_as_such(memory, tmp_path: Path) -> None:
    path = header_only_png(tmp_path / "h.png", 100, 100)
    with pytest.raises(ImageTooLargeError, match="limit of 9,999 given by the caller"):
        read_image(path, max_pixels=9_999)


def test_tiff_header_is_checked_before_pillow_or_tifffile_read_pixels(
    memory, tmp_path: Path
) -> None:
    memory.bytes = GB // 4
    # A palette TIFF goes to Pillow, which reads the whole file: the size is checked first.
    path = tmp_path / "pal.tif"
    tifffile.imwrite(
        path, np.zeros((8, 4096 * 4096 // 8 + 8), np.uint8), photometric="palette",
        colormap=np.zeros((3, 256), np.uint16),
    )  # fmt: skip
    with pytest.raises(ImageTooLargeError) as exc:
        read_image(path)
    assert_names_file(exc, path)


def test_a_large_file_is_refused_from_its_header_before_it_is_read(memory, tmp_path: Path) -> None:
    # A 40 MB PNG whose header claims more pixels than allowed: refused without
    # reading the 40 MB into memory.
    path = tmp_path / "big.png"
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    with open(path, "wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr))
        junk = b"\x00" * (40 * 1024 * 1024)
        fh.write(struct.pack(">I", len(junk)) + b"IDAT" + junk)
        fh.write(struct.pack(">I", zlib.crc32(b"IDAT" + junk)))
        del junk
    assert path.stat().st_size > decode_mod._HEADER_FIRST_BYTES
    tracemalloc.start()
    try:
        with pytest.raises(ImageTooLargeError):
            read_image(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024


def test_thumbnails_respect_the_limit(memory, tmp_path: Path) -> None:
    memory.bytes = GB // 4
    path = tmp_path / "wide.png"
    Image.fromarray(np.zeros((8, 4096 * 4096 // 8 + 8), np.uint8)).save(path)
    with pytest.raises(ImageTooLargeError):
        read_thumbnail(path)


def test_available_memory_reads_this_system() -> None:
    found = limits.available_memory()
    assert found is None or found > 0


def test_cgroup_limit_lowers_the_available_memory(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(limits, "_meminfo_available", lambda: 64 * GB)
    monkeypatch.setattr(limits, "_cgroup_headroom", lambda: 2 * GB)
    assert limits._linux_available() == 2 * GB
    monkeypatch.setattr(limits, "_cgroup_headroom", lambda: None)
    assert limits._linux_available() == 64 * GB
