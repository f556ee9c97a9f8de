"""Atomic writes: the target is either the old content or the whole new content."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.core import atomic
from segstudio.core.atomic import atomic_path, atomic_write_bytes, atomic_write_text


class BoomError(Exception):
    pass


def test_write_bytes_creates_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "data.bin"
    atomic_write_bytes(target, b"\x00\x01hello")
    assert target.read_bytes() == b"\x00\x01hello"
    assert sorted(os.listdir(tmp_path)) == ["data.bin"]


def test_write_bytes_replaces_existing(tmp_path: Path) -> None:
    target = tmp_path / "data.bin"
    target.write_bytes(b"old content that is longer")
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["data.bin"]


def test_write_text_is_utf8_and_verbatim(tmp_path: Path) -> None:
    target = tmp_path / "notes.txt"
    atomic_write_text(target, "ünïcode\r\nline two\n")
    assert target.read_bytes() == "ünïcode\r\nline two\n".encode()
    atomic_write_text(target, "latin", encoding="latin-1")
    assert target.read_bytes() == b"latin"


def test_atomic_path_yields_hidden_temp_in_same_folder_with_suffix(tmp_path: Path) -> None:
    target = tmp_path / "mask.png"
    with atomic_path(target) as temp:
        assert temp.parent == tmp_path
        assert temp.name.startswith(".mask.png.")
        assert temp.name.endswith(".tmp.png")
        assert temp.suffix == ".png"
        assert temp.exists()  # created empty, so no one else can take the name
        assert not target.exists()  # nothing visible at the target yet
        temp.write_bytes(b"x")
    assert target.read_bytes() == b"x"
    assert not temp.exists()


def test_atomic_path_lets_pil_pick_format_from_suffix(tmp_path: Path) -> None:
    target = tmp_path / "img.png"
    with atomic_path(target) as temp:
        Image.fromarray(np.full((4, 5), 7, np.uint8)).save(temp)
    with Image.open(target) as im:
        assert im.format == "PNG"
        assert np.asarray(im).tolist() == np.full((4, 5), 7).tolist()


def test_exception_inside_leaves_original_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "labels.png"
    target.write_bytes(b"original")
    with pytest.raises(BoomError), atomic_path(target) as temp:
        temp.write_bytes(b"half-writ")
        raise BoomError
    assert target.read_bytes() == b"original"
    assert os.listdir(tmp_path) == ["labels.png"]


def test_exception_before_writing_removes_empty_temp(tmp_path: Path) -> None:
    target = tmp_path / "new.txt"
    with pytest.raises(BoomError), atomic_path(target):
        raise BoomError
    assert os.listdir(tmp_path) == []


def test_keyboard_interrupt_also_cleans_up(tmp_path: Path) -> None:
    target = tmp_path / "x.bin"
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as temp:
        temp.write_bytes(b"partial")
        raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []


def test_failed_replace_keeps_original_and_removes_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "x.bin"
    target.write_bytes(b"original")

    def failing_replace(src: object, dst: object) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(atomic.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk on fire"):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"original"
    assert os.listdir(tmp_path) == ["x.bin"]


def test_file_is_fsynced_before_replace_and_folder_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append("fsync-dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync-file")
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        events.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    monkeypatch.setattr(atomic.os, "replace", replace)
    atomic_write_bytes(tmp_path / "f.bin", b"abc")
    expected = ["fsync-file", "replace"] + ([] if os.name == "nt" else ["fsync-dir"])
    assert events == expected


def test_missing_folder_raises_and_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        atomic_write_bytes(tmp_path / "nope" / "f.bin", b"abc")
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(os.name == "nt", reason="POSIX permission bits")
def test_permissions_kept_on_replace_and_umask_for_new_files(tmp_path: Path) -> None:
    existing = tmp_path / "shared.txt"
    existing.write_text("old")
    existing.chmod(0o640)
    atomic_write_text(existing, "new")
    assert stat.S_IMODE(existing.stat().st_mode) == 0o640

    umask = os.umask(0)
    os.umask(umask)
    fresh = tmp_path / "fresh.txt"
    atomic_write_text(fresh, "x")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~umask
    # a writer that recreates the temporary file privately (safetensors does)
    recreated = tmp_path / "model.safetensors"
    with atomic_path(recreated) as tmp:
        tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o600)
        os.close(fd)
    assert stat.S_IMODE(recreated.stat().st_mode) == 0o666 & ~umask


def test_long_names_still_work(tmp_path: Path) -> None:
    target = tmp_path / ("n" * 240 + ".png")
    atomic_write_bytes(target, b"ok")
    assert target.read_bytes() == b"ok"
    assert os.listdir(tmp_path) == [target.name]
