"""Nothing a user made is overwritten without asking: ``predict --out`` and ``model
new/convert --out`` refuse (one line, exit 2) unless ``--overwrite``."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.cli import main


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    assert main(["model", "new", "--arch", "segnet_basic", "--width", "0.125",
                 "--classes", "camvid11", "--out", str(out)]) == 0  # fmt: skip
    return out


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _refused(capsys: pytest.CaptureFixture[str], code: int, *needles: str) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    for needle in needles:
        assert needle in err[0], err[0]


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.jpg"):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(folder / name)
    return folder


def test_predict_refuses_names_that_collide(
    model_file: Path, photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """a.png and a_color.png both wrote a_color.png: the second overwrote the first."""
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(photos / "a_color.png")
    out = tmp_path / "pred"
    for flags in ([], ["--overwrite"]):  # no flag makes two predictions fit one file
        code = main(["predict", str(photos), "--model", str(model_file), "--out", str(out), *flags])
        _refused(capsys, code, "a.png and ", "a_color.png would both write", "a_color.png;")
    assert not out.exists()


def test_predict_into_the_input_folder_is_refused(
    model_file: Path, photos: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--out onto the input folder overwrote the photos (a.png is the input and the
    prediction's name): refused, even with --overwrite."""
    before = _digest(photos)
    code = main(["predict", str(photos), "--model", str(model_file), "--out", str(photos)])
    _refused(capsys, code, "would replace the input image", "a.png")
    code = main(["predict", str(photos / "a.png"), "--model", str(model_file),
                 "--out", str(photos), "--overwrite"])  # fmt: skip
    _refused(capsys, code, "would replace the input image")
    # b.jpg alone writes b.png and b_color.png beside it: only with --overwrite
    code = main(
        ["predict", str(photos / "b.jpg"), "--model", str(model_file), "--out", str(photos)]
    )
    _refused(capsys, code, "is a folder of the input images", "--overwrite")
    assert _digest(photos) == before
    code = main(["predict", str(photos / "b.jpg"), "--model", str(model_file),
                 "--out", str(photos), "--overwrite"])  # fmt: skip
    assert code == 0
    assert {k: v for k, v in _digest(photos).items() if k in before} == before
    assert {"b.png", "b_color.png"} <= set(_digest(photos))


def test_predict_never_replaces_files_silently(
    model_file: Path, photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--out onto a folder of ground-truth labels replaced them, exit 0."""
    labels = tmp_path / "labels"
    labels.mkdir()
    truth = np.arange(40 * 48, dtype=np.uint8).reshape(40, 48) % 11
    Image.fromarray(truth).save(labels / "a.png")
    (labels / "notes.txt").write_text("mine")
    before = _digest(labels)
    code = main(["predict", str(photos), "--model", str(model_file), "--out", str(labels)])
    _refused(capsys, code, f"--out {labels}: 1 file(s) there would be replaced (a.png)",
             "--overwrite")  # fmt: skip
    assert _digest(labels) == before
    code = main(["predict", str(photos), "--model", str(model_file), "--out", str(labels),
                 "--overwrite"])  # fmt: skip
    assert code == 0
    assert _digest(labels)["a.png"] != before["a.png"]
    assert (labels / "notes.txt").read_text() == "mine"  # only the predictions' names


@pytest.mark.parametrize("command", ["new", "convert"])
def test_model_out_is_never_replaced_without_overwrite(
    model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """``model new --out EXISTING`` overwrote a trained model."""
    out = tmp_path / "trained.safetensors"
    out.write_bytes(b"a trained model, say")
    if command == "new":
        args = ["model", "new", "--arch", "segnet_basic", "--width", "0.125",
                "--classes", "camvid11", "--out", str(out)]  # fmt: skip
    else:
        args = ["model", "convert", str(model_file), "--out", str(out)]
    code = main(args)
    _refused(capsys, code, f"--out {out}: the file exists", "--overwrite")
    assert out.read_bytes() == b"a trained model, say"
    assert main([*args, "--overwrite"]) == 0
    assert out.read_bytes() != b"a trained model, say"
    code = main([*args[:-1], str(tmp_path)])
    _refused(capsys, code, "is a folder")
