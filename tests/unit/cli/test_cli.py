"""The command line: model new/info, predict, eval, and its one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.cli import main
from segstudio.core.convert import index_to_rgb
from segstudio.core.labelset import preset


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    assert main(["model", "new", "--arch", "segnet", "--width", "0.125",
                 "--classes", "camvid11", "--out", str(out)]) == 0  # fmt: skip
    return out


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, (h, w) in {"a.png": (45, 61), "b.jpg": (64, 64), "c.tif": (33, 90)}.items():
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / name)
    return folder


def _one_line_error(capsys: pytest.CaptureFixture[str], code: int, needle: str) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1, err
    assert needle in err[0]


def test_model_new_and_info(model_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["model", "info", "--full", str(model_file)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["arch"] == {"name": "segnet", "params": {"width": 0.125, "in_channels": 3}}
    assert [c["name"] for c in info["labelset"]["classes"]][:2] == ["Sky", "Building"]


def test_model_new_from_a_classes_file(tmp_path: Path) -> None:
    classes = tmp_path / "classes.json"
    preset("voc").save(classes)
    out = tmp_path / "voc.safetensors"
    code = main(["model", "new", "--arch", "segnet_basic", "--width", "0.25",
                 "--classes", str(classes), "--out", str(out)])  # fmt: skip
    assert code == 0 and out.stat().st_size > 0


def test_predict_writes_index_and_colour_pngs(
    model_file: Path, images: Path, tmp_path: Path
) -> None:
    out = tmp_path / "pred"
    assert main(["predict", str(images), "--model", str(model_file), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "a.png", "a_color.png", "b.png", "b_color.png", "c.png", "c_color.png",
    ]  # fmt: skip
    for stem, (h, w) in {"a": (45, 61), "b": (64, 64), "c": (33, 90)}.items():
        index = Image.open(out / f"{stem}.png")
        assert index.mode == "L" and index.size == (w, h)
        labels = np.asarray(index)
        assert labels.max() < 11
        colour = np.asarray(Image.open(out / f"{stem}_color.png").convert("RGB"))
        np.testing.assert_array_equal(colour, index_to_rgb(labels, preset("camvid11")))


def test_predict_with_tiles_matches_size(model_file: Path, tmp_path: Path) -> None:
    img = tmp_path / "wide.png"
    Image.fromarray(np.full((70, 700, 3), 90, np.uint8)).save(img)
    out = tmp_path / "o"
    code = main(["predict", str(img), "--model", str(model_file), "--out", str(out),
                 "--tile", "256", "--precision", "fp32", "--device", "cpu"])  # fmt: skip
    assert code == 0
    assert Image.open(out / "wide.png").size == (700, 70)


def test_predict_reads_a_large_tiff_by_bands(
    model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    """A tiled TIFF larger than a tile is read a band at a time, never whole, and
    predicts what the same pixels do as a PNG; a damaged tile skips that image."""
    import tifffile

    import segstudio.io.images as images_module
    from segstudio.io.images import bands

    rgb = np.random.default_rng(3).integers(0, 256, (200, 700, 3), dtype=np.uint8)
    folder = tmp_path / "scans"
    folder.mkdir()
    Image.fromarray(rgb).save(folder / "flat.png")
    tifffile.imwrite(
        folder / "tiled.tif", rgb, photometric="rgb", tile=(64, 64), compression="zlib"
    )
    whole_reads: list[str] = []
    real_read = images_module.read_image
    monkeypatch.setattr(
        images_module, "read_image", lambda p: whole_reads.append(Path(p).name) or real_read(p)
    )
    out = tmp_path / "o"
    argv = ["--model", str(model_file), "--out", str(out), "--tile", "256", "--device", "cpu"]
    assert main(["predict", str(folder), *argv]) == 0
    assert whole_reads == ["flat.png"]
    np.testing.assert_array_equal(
        np.asarray(Image.open(out / "tiled.png")), np.asarray(Image.open(out / "flat.png"))
    )

    with tifffile.TiffFile(folder / "tiled.tif") as tif:
        offset, count = tif.pages.first.dataoffsets[12], tif.pages.first.databytecounts[12]
    data = bytearray((folder / "tiled.tif").read_bytes())
    data[offset : offset + count] = b"\x00" * count
    (folder / "tiled.tif").write_bytes(bytes(data))
    assert bands.open_bands(folder / "tiled.tif") is not None  # the header is fine
    capsys.readouterr()
    code = main(["predict", str(folder), *argv, "--overwrite"])
    err = capsys.readouterr().err
    assert code == 2 and "tiled.tif" in err and "corrupt" in err
    assert main(["predict", str(folder), *argv, "--overwrite", "--tile-workers", "0"]) == 2
    assert "--tile-workers must be at least 1" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["predict", "nope/", "--model", "M", "--out", "O"], "no such file"),
        (["predict", "IMGS", "--model", "missing.safetensors", "--out", "O"], "not found"),
        (["predict", "IMGS", "--model", "M", "--out", "O", "--device", "cuda:7"], "CUDA"),
        (["predict", "IMGS", "--model", "M", "--out", "O", "--tile", "8"], "tile"),
        (["predict", "IMGS", "--model", "M"], "--out"),
        (["model", "new", "--classes", "nonsense", "--out", "x.safetensors"], "not a preset"),
        (
            ["model", "new", "--arch", "resnet", "--classes", "voc", "--out", "O/x.safetensors"],
            "unknown architecture",
        ),
        (["eval", "--model", "M", "--images", "IMGS", "--labels", "nowhere"], "--labels"),
        (["frobnicate", "x"], "unknown command 'frobnicate'"),
        (["frobnicate"], "frobnicate: no such folder"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(
    argv: list[str], needle: str, model_file: Path, images: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    if "cuda:7" in argv:
        pytest.importorskip("torch")
        import torch

        if torch.cuda.device_count() > 7:
            pytest.skip("this machine has 8 GPUs")
    out = tmp_path / "O"
    subst = {
        "M": str(model_file),
        "IMGS": str(images),
        "O": str(out),
        "nope/": str(tmp_path / "nope"),
    }
    argv = [subst.get(a, a) for a in argv]
    argv = [a.replace("O/", f"{out}/") for a in argv]
    code = main(argv)
    _one_line_error(capsys, code, needle)
    assert not out.exists() or not any(out.iterdir())


def test_unreadable_image_is_reported_and_the_rest_predicted(
    model_file: Path, images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    out = tmp_path / "pred"
    code = main(["predict", str(images), "--model", str(model_file), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert "broken.png" in err
    names = sorted(p.name for p in out.iterdir())
    assert "broken.png" not in names and "a.png" in names and len(names) == 6
    assert not [n for n in names if n.startswith(".")]


def test_name_clash_is_refused_before_writing(
    model_file: Path, images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(images / "a.bmp")
    out = tmp_path / "pred"
    code = main(["predict", str(images), "--model", str(model_file), "--out", str(out)])
    _one_line_error(capsys, code, f"would both write {out / 'a.png'}")
    assert not out.exists()


def _labels_for(images: Path, tmp_path: Path, void: int | None = None) -> Path:
    labels = tmp_path / "labels"
    labels.mkdir()
    rng = np.random.default_rng(1)
    for img in images.iterdir():
        w, h = Image.open(img).size
        lab = rng.integers(0, 11, (h, w), dtype=np.uint8)
        if void is not None:
            lab[:5] = void
        Image.fromarray(lab).save(labels / f"{img.stem}.png")
    return labels


def test_eval_json(
    model_file: Path, images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = _labels_for(images, tmp_path, void=11)
    capsys.readouterr()
    code = main(["eval", "--model", str(model_file), "--images", str(images),
                 "--labels", str(labels), "--void", "11", "--json"])  # fmt: skip
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    for key in ("pixel_accuracy", "mean_accuracy", "mean_iou", "fw_iou", "per_class_iou"):
        assert key in result
    assert len(result["per_class_iou"]) == 11
    assert 0.0 <= result["mean_iou"] <= result["pixel_accuracy"] + 1e-9 <= 1.0 + 1e-9
    assert result["images"] == 3


def test_eval_without_void_flag_explains_out_of_range_labels(
    model_file: Path, images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = _labels_for(images, tmp_path, void=11)
    code = main(["eval", "--model", str(model_file), "--images", str(images),
                 "--labels", str(labels)])  # fmt: skip
    _one_line_error(capsys, code, "--void")


def test_eval_reports_images_without_labels(
    model_file: Path, images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = _labels_for(images, tmp_path)
    (labels / "b.png").unlink()
    code = main(["eval", "--model", str(model_file), "--images", str(images),
                 "--labels", str(labels)])  # fmt: skip
    _one_line_error(capsys, code, "b.jpg")


def test_console_entry_points() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "segstudio", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0 and run.stdout.startswith("segstudio ")
    run = subprocess.run(
        [sys.executable, "-m", "segstudio", "predict", "--model"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1


def test_predict_without_model_uses_the_bundled_one(
    model_file: Path, images: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("SEGSTUDIO_BUNDLED_MODEL", str(tmp_path / "absent.safetensors"))
    code = main(["predict", str(images), "--out", str(tmp_path / "o")])
    _one_line_error(capsys, code, "no bundled model")
    monkeypatch.setenv("SEGSTUDIO_BUNDLED_MODEL", str(model_file))
    assert main(["predict", str(images), "--out", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "a.png").is_file()


def test_model_convert_to_half(model_file: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "half.safetensors"
    assert main(["model", "convert", str(model_file), "--half", "--out", str(out)]) == 0
    assert "float16" in capsys.readouterr().out
    assert out.stat().st_size < 0.6 * model_file.stat().st_size
    code = main(["model", "convert", str(out), "--out", str(out)])
    _one_line_error(capsys, code, "another file")


def test_eval_a_dataset_folder_finds_labels_and_void(
    model_file: Path, images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``eval camvid/val``, ``eval camvid`` and ``eval --images --labels --void`` agree."""
    import shutil

    root = tmp_path / "camvid"
    root.mkdir()
    shutil.copytree(images, root / "val")
    shutil.move(_labels_for(images, tmp_path, void=11), root / "valannot")
    ls = json.loads(preset("camvid11").to_json())
    (root / "classes.json").write_text(json.dumps({**ls, "void_index": 11}))

    def scores(*argv: str) -> dict:
        capsys.readouterr()
        assert main(["eval", *argv, "--model", str(model_file), "--json"]) == 0
        result = json.loads(capsys.readouterr().out)
        assert result.pop("void") == 11
        return {k: v for k, v in result.items() if not k.endswith("_dir")}

    explicit = scores("--images", str(root / "val"), "--labels", str(root / "valannot"),
                      "--void", "11")  # fmt: skip
    assert scores(str(root / "val")) == explicit
    assert scores(str(root)) == explicit
    flat = tmp_path / "flat"
    flat.mkdir()
    (root / "val").rename(flat / "images")
    (root / "valannot").rename(flat / "labels")
    code = main(["eval", str(flat), "--model", str(model_file)])  # no classes.json: no void
    _one_line_error(capsys, code, "--void")
    assert scores(str(flat), "--void", "11") == explicit
    code = main(["eval", str(tmp_path / "nothing"), "--model", str(model_file)])
    _one_line_error(capsys, code, "not a folder")
    code = main(["eval", str(root), "--model", str(model_file)])  # emptied: no labels beside
    _one_line_error(capsys, code, "cannot tell where its labels are")
    code = main(["eval", str(flat), "--images", str(flat), "--model", str(model_file)])
    _one_line_error(capsys, code, "not both")
    code = main(["eval", "--images", str(flat), "--model", str(model_file)])
    _one_line_error(capsys, code, "--images and --labels")
    # --images/--labels say it all: no classes.json beside them is read
    (flat / "classes.json").write_text(json.dumps({**ls, "void_index": 11}))
    code = main(["eval", "--images", str(flat / "images"), "--labels", str(flat / "labels"),
                 "--model", str(model_file)])  # fmt: skip
    _one_line_error(capsys, code, "--void")
    assert scores(str(flat)) == explicit  # FOLDER mode reads it
    (flat / "classes.json").write_text(json.dumps({**ls, "void_index": 3}))
    code = main(["eval", str(flat), "--model", str(model_file)])
    _one_line_error(capsys, code, "is the id of the model's class 'Road'")


def test_model_convert_calibrates_for_int8_and_predict_takes_int8(
    model_file: Path, images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``convert --calibrate DIR`` stores an int8 calibration; ``predict --precision int8``
    then runs it, and refuses (one line) a model without one."""
    from segstudio.model.files import load_model
    from segstudio.model.quantize import calibration_of, int8_available

    out = tmp_path / "int8.safetensors"
    argv = ["model", "convert", str(model_file), "--out", str(out)]
    assert main([*argv, "--calibrate", str(images), "--calibration-images", "2"]) == 0
    assert "int8 calibration on 2 image(s)" in capsys.readouterr().out
    calibration = calibration_of(load_model(out))
    assert calibration is not None and calibration["images"] == 2
    _one_line_error(capsys, main([*argv, "--overwrite", "--calibrate", str(tmp_path / "no")]),
                    "not a folder")  # fmt: skip
    if not int8_available():
        pytest.skip("no oneDNN int8 engine in this PyTorch build")
    pred = ["predict", str(images / "a.png"), "--precision", "int8", "--device", "cpu"]
    assert main([*pred, "--model", str(out), "--out", str(tmp_path / "p")]) == 0
    assert (tmp_path / "p" / "a.png").is_file()
    capsys.readouterr()
    code = main([*pred, "--model", str(model_file), "--out", str(tmp_path / "q")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "int8" in err[0], err


def _full_disk(*_a: object, **_k: object) -> None:
    raise OSError(28, "No space left on device")


def test_a_failed_write_is_reported_even_when_the_next_prediction_fails(
    model_file: Path,
    images: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each image's PNGs are written while the next is predicted: an error there is
    not lost behind an error (or Ctrl+C) in that prediction."""
    import segstudio.io.images as io_images
    from segstudio.model.predictor import Predictor

    calls = []
    real = Predictor.predict

    def predict(self: Predictor, rgb: np.ndarray, **kw: object) -> object:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, rgb, **kw)

    monkeypatch.setattr(io_images, "write_label_map", _full_disk)
    monkeypatch.setattr(Predictor, "predict", predict)
    out = tmp_path / "pred"
    code = main(["predict", str(images), "--model", str(model_file), "--out", str(out)])
    err = capsys.readouterr().err
    assert code != 0 and "interrupted" in err
    assert "writing a prediction failed" in err and "No space left on device" in err


def test_a_failed_write_stops_the_run_with_one_line(
    model_file: Path,
    images: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import segstudio.io.images as io_images

    monkeypatch.setattr(io_images, "write_label_map", _full_disk)
    code = main(["predict", str(images), "--model", str(model_file), "--out", str(tmp_path / "p")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "no space left on device" in err[0].lower(), err
