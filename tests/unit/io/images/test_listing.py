"""Listing a folder's images: suffixes, hidden files, natural order (images.listing)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from segstudio.core.errors import ImageNotFoundError, ImageReadError
from segstudio.io.images import IMAGE_SUFFIXES, list_images, natural_key


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
    assert IMAGE_SUFFIXES == (
        ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif",
    )  # fmt: skip


def test_natural_key_orders_digit_runs_by_value_and_ignores_case() -> None:
    names = ["img10.png", "IMG2.png", "img1.png", "img2b.png", "a", "B"]
    expected = ["a", "B", "img1.png", "IMG2.png", "img2b.png", "img10.png"]
    assert sorted(names, key=natural_key) == expected
    assert natural_key("x\u0663y") < natural_key("x10y")  # Arabic-Indic digit three


def _make_undecodable(folder: Path) -> Path | None:
    """A file whose name is not valid UTF-8, or None where the file system refuses one."""
    raw = os.fsencode(folder) + b"/bad\xff name.png"
    try:
        with open(raw, "wb") as fh:
            fh.write(b"x")
    except (OSError, ValueError):
        return None
    return Path(os.fsdecode(raw))


def test_names_that_are_not_utf8_are_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "ok.png").write_bytes(b"x")
    if _make_undecodable(tmp_path) is None:
        pytest.skip("this file system does not allow a name that is not UTF-8")
    with caplog.at_level(logging.WARNING, logger="segstudio.io.images.listing"):
        assert [p.name for p in list_images(tmp_path)] == ["ok.png"]
    assert "b'bad\\xff name.png'" in caplog.text and "not valid UTF-8" in caplog.text
