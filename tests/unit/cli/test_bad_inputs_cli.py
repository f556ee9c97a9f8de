"""The bad-input corpus through the command line, and a full disk under every writing command.

Every case of ``tests/unit/io/test_bad_inputs.py`` that a command reads is
handed to that command: a bad input exits 2 with one ``segstudio CMD: error:``
line naming the file (``predict`` also lists each image it skipped), never a
traceback; a good one exits 0. A full disk (a monkeypatched write, and a real
1 MiB tmpfs where this machine lets the tests mount one) is one line naming
where the write failed, for export, predict, import, model new and train.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.cli import main, os_error_line
from segstudio.core.labelset import preset
from segstudio.io.images import read_image
from tests.unit.io import test_bad_inputs as corpus

PREDICTED = {"read_image"}
TRAIN = ["train", "--arch", "segnet_basic", "--width", "0.125", "--epochs", "1", "--crop", "32"]
IMPORTED = {"read_coco_file": "coco", "read_cvat_folder": "cvat"}


@pytest.fixture(autouse=True)
def _default_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(corpus.MAX_PIXELS_ENV, raising=False)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    assert main(["model", "new", "--arch", "segnet_basic", "--width", "0.125",
                 "--classes", "camvid11", "--out", str(out)]) == 0  # fmt: skip
    return out


def _stderr_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    # Log records (warnings about a file) are not the command's answer.
    return [ln for ln in err.strip().splitlines() if not ln.startswith(("WARNING ", "INFO "))]


def _error_line(capsys: pytest.CaptureFixture[str], code: int, command: str) -> str:
    lines = _stderr_lines(capsys)
    assert code == 2, lines
    errors = [ln for ln in lines if ln.startswith(f"segstudio {command}: error: ")]
    assert len(errors) == 1, lines
    return errors[0]


def _command_for(case: corpus.Case, path: Path, tmp_path: Path, model: Path) -> tuple[str, list]:
    """The command that reads ``case``'s input, and its arguments."""
    reader = getattr(case.read, "__name__", "")
    out = str(tmp_path / "o")
    if reader in PREDICTED:
        return "predict", ["predict", str(path), "--model", str(model), "--out", out]
    if reader in IMPORTED:
        source = path.parent.parent if reader == "read_coco_file" else path.parent
        project = tmp_path / "project"
        project.mkdir()
        return "import", ["import", "--format", IMPORTED[reader], str(project), str(source)]
    if reader == "read_classes_file":
        out = tmp_path / "m.safetensors"
        return "model new", ["model", "new", "--classes", str(path), "--out", str(out)]
    if reader == "load":
        image = corpus.save(tmp_path / "img.png", corpus.rgb())
        return "predict", ["predict", str(image), "--model", str(path), "--out", out]
    pytest.skip(f"no command reads {reader} inputs alone")  # label maps: read by import cases


CLI_CASES = [
    c
    for c in corpus.CASES
    if getattr(c.read, "__name__", "") in {*PREDICTED, *IMPORTED, "read_classes_file", "load"}
]


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.id for c in CLI_CASES])
def test_bad_input_through_the_cli(
    case: corpus.Case, tmp_path: Path, tiny_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    made = tmp_path / "made"
    made.mkdir()
    path = case.make(made)
    command, argv = _command_for(case, path, tmp_path, tiny_model)
    capsys.readouterr()
    code = main(argv)
    if case.error is None:
        assert code == 0, _stderr_lines(capsys)
        _stderr_lines(capsys)  # and no traceback
        return
    if command == "predict" and getattr(case.read, "__name__", "") in PREDICTED:
        # predict goes on past a bad image, lists it with its fault on a "skipped"
        # line, and ends with one error line.
        lines = _stderr_lines(capsys)
        assert code == 2, lines
        assert sum(ln.startswith("segstudio predict: error: ") for ln in lines) == 1, lines
        named = [ln for ln in lines if path.name in ln]
        assert named and any(re.search(case.fault, ln) for ln in named), lines
        return
    line = _error_line(capsys, code, command)
    assert path.name in line, line


def test_predict_names_each_bad_image_and_its_fault(
    tmp_path: Path, tiny_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    corpus.save(folder / "good.png", corpus.rgb())
    corpus.huge_png_header(folder / "huge.png")
    corpus.write(folder / "empty.jpg", b"")
    capsys.readouterr()
    code = main(["predict", str(folder), "--model", str(tiny_model), "--out", str(tmp_path / "o")])
    lines = _stderr_lines(capsys)
    assert code == 2
    skipped = [ln for ln in lines if "skipped" in ln]
    assert any("huge.png" in ln and "SEGSTUDIO_MAX_PIXELS=100000x100000" in ln for ln in skipped)
    assert any("empty.jpg" in ln and "empty" in ln for ln in skipped)
    assert (tmp_path / "o" / "good.png").is_file()


def test_a_folder_with_a_name_that_is_not_utf8_is_predicted_without_it(
    tmp_path: Path,
    tiny_model: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    corpus.save(folder / "good.png", corpus.rgb())
    try:
        with open(os.fsencode(folder) + b"/bad\xff.png", "wb") as fh:
            fh.write(b"x")
    except (OSError, ValueError):
        pytest.skip("this file system does not allow a name that is not UTF-8")
    capsys.readouterr()
    code = main(["predict", str(folder), "--model", str(tiny_model), "--out", str(tmp_path / "o")])
    assert code == 0, capsys.readouterr().err
    assert "b'bad\\xff.png'" in caplog.text and "not valid UTF-8" in caplog.text
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["good.png", "good_color.png"]


# --------------------------------------------------------------------------- a full disk


def _project(folder: Path) -> Path:
    """A project of two labelled 64 x 64 images (labels stored by the store itself)."""
    from segstudio.io.project import Project

    folder.mkdir()
    for i in range(2):
        corpus.save(folder / f"i{i}.png", corpus.rgb(64, 64, seed=i))
    project = Project.open(folder)
    try:
        project.scan()
        project.set_labelset(preset("camvid11"))
        rng = np.random.default_rng(0)
        labels = [(f"i{i}.png", rng.integers(0, 11, (64, 64)).astype(np.uint8)) for i in range(2)]
        project.import_labels(labels, user="test")
    finally:
        project.close()
    return folder


def _raise_enospc(*_args: object, **_kw: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_disk_full_in_predict_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_model: Path, capsys
) -> None:
    image = corpus.save(tmp_path / "a.png", corpus.rgb())
    monkeypatch.setattr("segstudio.core.atomic.os.replace", _raise_enospc)
    out = tmp_path / "pred"
    code = main(["predict", str(image), "--model", str(tiny_model), "--out", str(out)])
    line = _error_line(capsys, code, "predict")
    assert "no space left on device" in line and str(out) in line


def test_disk_full_in_export_and_import_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys
) -> None:
    project = _project(tmp_path / "proj")
    assert main(["export", str(project), "--format", "index", "--out", str(tmp_path / "ds")]) == 0
    with monkeypatch.context() as m:
        m.setattr(Image.Image, "save", _raise_enospc)
        code = main(["export", str(project), "--format", "index", "--out", str(tmp_path / "ex")])
    line = _error_line(capsys, code, "export")
    assert "No space left on device" in line or "no space left on device" in line
    target = tmp_path / "target"
    target.mkdir()
    with monkeypatch.context() as m:
        m.setattr(shutil, "copyfile", _raise_enospc)
        code = main(["import", "--format", "index", str(target), str(tmp_path / "ds")])
    line = _error_line(capsys, code, "import")
    assert "no space left on device" in line.lower()


def test_disk_full_in_model_new_and_train_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys
) -> None:
    from safetensors import SafetensorError

    def full(*_a: object, **_k: object) -> None:
        raise SafetensorError("Error while serializing: I/O error: No space left (os error 28)")

    monkeypatch.setattr("segstudio.model.files.save_file", full)
    out = tmp_path / "m.safetensors"
    code = main(["model", "new", "--width", "0.125", "--classes", "camvid11", "--out", str(out)])
    line = _error_line(capsys, code, "model new")
    assert f"{out}: no space left on device" in line
    assert not out.exists() and not list(tmp_path.glob(".*tmp*"))
    project = _project(tmp_path / "proj")
    code = main([*TRAIN, str(project), "--checkpoint-dir", str(tmp_path / "ck"), "--out", str(out)])
    line = _error_line(capsys, code, "train")
    assert f"{out}: no space left on device" in line


def test_os_error_line_keeps_programming_errors() -> None:
    assert os_error_line(OSError(errno.ENOENT, "No such file or directory", "x")) is None
    assert os_error_line(OSError("some library's odd failure")) is None
    assert os_error_line(OSError(errno.EROFS, "Read-only file system", "/mnt/x")) == (
        "/mnt/x: read-only file system; the file system is read-only; write elsewhere"
    )
    copy = OSError(errno.ENOSPC, "No space left on device", "/src/a.png", None, "/dst/a.png")
    assert os_error_line(copy).startswith("/dst/a.png: no space left on device")


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs, filled up to its last 16 KiB; skipped where tests cannot mount one."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    if shutil.which("mount") is None or (hasattr(os, "geteuid") and os.geteuid() != 0):
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
        capture_output=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        with open(mount / "filler", "wb") as fh:
            fh.write(b"\0" * (1024 * 1024 - 16 * 1024))
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_real_full_disk_under_every_writing_command(
    full_disk: Path, tmp_path: Path, tiny_model: Path, capsys
) -> None:
    project = _project(tmp_path / "proj")
    images = tmp_path / "imgs"
    images.mkdir()
    for i in range(3):
        corpus.save(images / f"n{i}.png", corpus.rgb(256, 256, seed=i))
    assert main(["export", str(project), "--format", "index", "--out", str(tmp_path / "ds")]) == 0
    capsys.readouterr()
    runs = {
        "predict": ["predict", str(images), "--model", str(tiny_model),
                    "--out", str(full_disk / "pred")],
        "export": ["export", str(project), "--format", "index", "--out", str(full_disk / "ex")],
        "model new": ["model", "new", "--width", "0.25", "--classes", "camvid11",
                      "--out", str(full_disk / "m.safetensors")],
        "train": [*TRAIN, str(project), "--checkpoint-dir", str(tmp_path / "ck"),
                  "--out", str(full_disk / "t.safetensors")],
    }  # fmt: skip
    for command, argv in runs.items():
        line = _error_line(capsys, main(argv), command)
        assert "no space left on device" in line.lower(), line
    target = full_disk / "target"
    target.mkdir()
    line = _error_line(
        capsys, main(["import", "--format", "index", str(target), str(tmp_path / "ds")]), "import"
    )
    assert "full" in line.lower() or "no space" in line.lower(), line
    # Whatever was written in full is readable: nothing half-written under a final name.
    for p in full_disk.rglob("*.png"):
        if not p.name.startswith("."):
            read_image(p)
