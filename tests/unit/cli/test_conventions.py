"""Command-line conventions: clean program names in errors, "did you mean" for a
mistyped command, messages that name the flags, a short ``model info``, and
arguments checked before torch or OpenCV is imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import segstudio.cli as cli
from segstudio.cli import COMMANDS, MODEL_COMMANDS, main
from segstudio.cli.common import split_arg
from segstudio.cli.parser import build_parser
from segstudio.core.errors import UsageError
from segstudio.core.labelset import preset

REPO = Path(__file__).resolve().parents[3]


def _one_line(capsys: pytest.CaptureFixture[str], code: int) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1, err
    return err[0]


def test_the_parser_knows_the_commands_main_checks_against() -> None:
    parser = build_parser()
    sub = parser._subparsers._group_actions[0]  # type: ignore[union-attr]
    assert tuple(sub.choices) == COMMANDS
    model = sub.choices["model"]._subparsers._group_actions[0]
    assert tuple(model.choices) == MODEL_COMMANDS


@pytest.mark.parametrize(
    ("argv", "prefix"),
    [
        (["predict"], "segstudio predict: error: the following arguments are required"),
        (["model"], "segstudio model: error: the following arguments are required: {new,"),
        (["model", "info"], "segstudio model info: error: the following arguments are required"),
        (["export", "p", "--format", "x", "--out", "o"], "segstudio export: error: argument"),
        (["train", "s", "--out", "o", "--recipe", "x"], "segstudio train: error: argument"),
    ],
)
def test_argparse_errors_name_the_command_not_the_usage_line(
    argv: list[str], prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    line = _one_line(capsys, main(argv))
    assert line.startswith(prefix), line
    assert "[FOLDER]" not in line
    command = prefix.split(":")[0]
    assert line.endswith(f"(see {command} --help)")


@pytest.mark.parametrize("command", ["predict", "model info", "export", "import", "train"])
def test_usage_lines_name_the_command(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*command.split(), "--help"]) == 0
    assert capsys.readouterr().out.startswith(f"usage: segstudio {command} [-h]")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["predcit", "x.png"], "segstudio: error: unknown command 'predcit'; did you mean 'pred"),
        (["predcit"], "unknown command 'predcit'; did you mean 'predict'?"),
        (["-v", "trian", "src", "--out", "m.safetensors"], "did you mean 'train'?"),
        (["evaluate"], "did you mean 'eval'?"),
        (["info", "m.safetensors"], "did you mean 'model info'?"),
        (["model", "nwe", "--classes", "voc"], "segstudio model: error: unknown command 'nwe';"),
        (["frobnicate", "x"], "unknown command 'frobnicate'; the commands are model, predict"),
        (["frobnicate"], "segstudio: error: frobnicate: no such folder"),
        (["predict.jpg"], "predict.jpg: no such folder"),  # a path, not a typo
    ],
)
def test_a_mistyped_command_gets_a_suggestion(
    argv: list[str],
    expected: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    line = _one_line(capsys, main(argv))
    assert expected in line, line


def test_a_folder_that_exists_opens_even_when_named_like_a_command_typo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    opened: list[str | None] = []
    monkeypatch.setattr(cli, "run_gui", lambda folder: opened.append(folder) or 0)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "predcit").mkdir()
    (tmp_path / "photos").mkdir()
    assert main(["predcit"]) == 0
    assert main(["photos"]) == 0
    assert main([str(tmp_path)]) == 0
    assert opened == ["predcit", "photos", str(tmp_path)]
    (tmp_path / "a.png").write_bytes(b"")
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    assert "a.png: not a folder" in _one_line(capsys, main(["a.png"]))


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("0.9,0.9,0.1", "the shares must sum to 1, not 1.9"),
        ("0.7,0.2", "expected three shares"),
        ("a,b,c", "expected three numbers"),
        ("1.5,-0.5,0", "each share must be in 0..1"),
        ("nan,0.5,0.5", "each share must be in 0..1"),
    ],
)
def test_split_arg_explains_bad_shares(value: str, needle: str) -> None:
    with pytest.raises(UsageError) as err:
        split_arg(value)
    assert needle in str(err.value) and str(err.value).startswith(f"--split {value}:")


def test_split_arg_takes_shares_that_sum_to_one_within_rounding() -> None:
    assert split_arg("0.7,0.2,0.1") == (0.7, 0.2, 0.1)  # 0.7 + 0.2 + 0.1 is 0.9999999999999999


def test_export_split_error_shows_a_sensible_sum(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["export", str(tmp_path), "--format", "index", "--out", str(tmp_path / "o"),
                 "--split", "0.9,0.9,0.1"])  # fmt: skip
    line = _one_line(capsys, code)
    assert line.endswith("the shares must sum to 1, not 1.9")
    assert "00000" not in line


def test_import_errors_name_the_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "src"
    (src / "images").mkdir(parents=True)
    (src / "labels").mkdir()
    for i in range(2):
        Image.fromarray(np.full((16, 20, 3), 40 * i, np.uint8)).save(src / "images" / f"i{i}.png")
        Image.fromarray(np.full((16, 20), i, np.uint8)).save(src / "labels" / f"i{i}.png")
    project = tmp_path / "project"
    argv = ["import", str(project), str(src), "--format", "index"]
    line = _one_line(capsys, main(argv))
    assert "no classes.json" in line and "--palette" in line and "palette=" not in line
    preset("camvid11").save(src / "classes.json")
    assert main(argv) == 0
    line = _one_line(capsys, main(argv))  # the images hold labels now
    assert "--replace" in line and "with replace" not in line
    assert main([*argv, "--replace"]) == 0
    capsys.readouterr()
    line = _one_line(capsys, main([*argv, "--palette", str(tmp_path / "none.txt")]))
    assert line.endswith(f"--palette {tmp_path / 'none.txt'}: no such file")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    assert main(["model", "new", "--arch", "segnet", "--width", "0.125",
                 "--classes", "camvid11", "--out", str(out)]) == 0  # fmt: skip
    return out


def test_model_info_is_short_and_full_is_the_whole_metadata(
    model_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["model", "info", str(model_file)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) <= 10, lines
    text = "\n".join(lines)
    assert "architecture  segnet (in_channels 3, width 0.125)" in text
    assert "classes       11 (CamVid-11): Sky, Building, Pole" in text
    assert "metrics       none (not evaluated)" in text
    assert "lineage       untrained (seed 0)" in text
    assert "MiB" in lines[0] and "float32" in lines[0]
    assert main(["model", "info", "--full", str(model_file)]) == 0
    full = json.loads(capsys.readouterr().out)
    assert full["arch"] == {"name": "segnet", "params": {"width": 0.125, "in_channels": 3}}
    assert [c["name"] for c in full["labelset"]["classes"]][:2] == ["Sky", "Building"]


def test_model_info_summarises_a_trained_models_lineage(
    model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from segstudio.model.files import load_model, save_model, with_metadata

    base = load_model(model_file)
    grandparent = {"kind": "trained", "source": "camvid", "epochs": 150, "duration_s": 8374.1}
    provenance = {
        "kind": "fine-tuned",
        "head": "kept",
        "source": "/data/my project",
        "train_images": 12,
        "val_images": 3,
        "train_names": [f"frame{i}.png" for i in range(12)],
        "epochs": 4.0,
        "steps": 40,
        "duration_s": 61.2,
        "device": "cpu",
        "precision": "fp32",
        "parent": {
            "path": "base.safetensors",
            "arch": {"name": "segnet", "params": {}},
            "mean_iou": 0.5677,
            "provenance": grandparent,
        },
    }
    metrics = {"mean_iou": 0.61234, "pixel_accuracy": 0.9, "images": 3, "per_class_iou": [0.5]}
    tuned = with_metadata(base, provenance=provenance, metrics=metrics)
    path = save_model(tmp_path / "tuned.safetensors", tuned)
    capsys.readouterr()
    assert main(["model", "info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "metrics       mean IoU 0.6123, pixel accuracy 0.9000 on 3 validation image(s)" in out
    assert "lineage       fine-tuned (kept) on /data/my project" in out
    assert "training      12 training + 3 validation image(s), 4 epoch(s) (40 steps), 61 s" in out
    assert "  from        base.safetensors: segnet, mean IoU 0.5677; trained on camvid" in out
    assert "frame0.png" not in out  # the name lists are --full's


def test_model_info_survives_metadata_of_odd_types(
    model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from segstudio.model.files import load_model, save_model, with_metadata

    odd = {"kind": 7, "epochs": "many", "duration_s": "long", "steps": None, "parent": "x"}
    model = with_metadata(load_model(model_file), provenance=odd, metrics={"mean_iou": "high"})
    path = save_model(tmp_path / "odd.safetensors", model)
    capsys.readouterr()
    assert main(["model", "info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "mean IoU high" in out and "many epoch(s)" in out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["model", "info", "{t}/missing.safetensors"],
         "model info: error: {t}/missing.safetensors: model file not found"),
        (["model", "info", "{t}"], "is a folder, not a model file"),
        (["model", "convert", "{t}/missing.safetensors", "--out", "{t}/c.safetensors"],
         "model file not found"),
        (["predict", "{t}/nonexistent.png", "--model", "{t}/fake.safetensors", "--out", "{t}/x"],
         "no such file or folder"),
        (["predict", "{t}/img.png", "--model", "{t}/missing.safetensors", "--out", "{t}/x"],
         "--model {t}/missing.safetensors: model file not found"),
        (["eval", "{t}/nowhere", "--model", "{t}/fake.safetensors"], "not a folder"),
        (["eval", "--images", "{t}/nowhere", "--labels", "{t}", "--model", "{t}/fake.safetensors"],
         "--images"),
        (["eval", "{t}/data", "--model", "{t}/missing.safetensors"], "model file not found"),
        (["train", "{t}/nowhere", "--out", "{t}/m.safetensors"], "no such folder"),
        (["train", "{t}", "--out", "{t}/m.txt"], "must end in .safetensors"),
        (["train", "{t}", "--out", "{t}/m.safetensors", "--init", "{t}/no.safetensors"],
         "--init {t}/no.safetensors: model file not found"),
        (["train", "{t}", "--out", "{t}/m.safetensors", "--batch-size", "0"],
         "--batch-size is 0, must be 1..4096"),
        (["train", "{t}", "--quick", "--out", "{t}/m.txt"], "must be a .safetensors file"),
        (["export", "{t}/noproject", "--format", "index", "--out", "{t}/e"], "no such folder"),
        (["export", "{t}", "--format", "index", "--out", "{t}/e", "--split", "1,1,1"], "--split"),
        (["import", "{t}/p", "{t}/nosource", "--format", "index"], "no such dataset folder"),
        (["import", "{t}/p", "{t}", "--format", "rgb", "--palette", "{t}/no.txt"], "--palette"),
    ],
)  # fmt: skip
def test_bad_arguments_are_answered_before_torch_or_opencv_is_imported(
    argv: list[str], needle: str, tmp_path: Path
) -> None:
    (tmp_path / "img.png").write_bytes(b"not read")
    (tmp_path / "fake.safetensors").write_bytes(b"not read either")
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    (data / "labels").mkdir()
    argv = [a.replace("{t}", str(tmp_path)) for a in argv]
    code = (
        "import sys\n"
        "from segstudio.cli import main\n"
        "rc = main(sys.argv[1:])\n"
        "print(sorted(m for m in ('torch', 'cv2') if m in sys.modules))\n"
        "sys.exit(rc)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=REPO, check=False
    )
    err = run.stderr.strip().splitlines()
    assert run.returncode == 2 and len(err) == 1, err
    assert needle.replace("{t}", str(tmp_path)) in err[0]
    assert run.stdout.strip() == "[]", f"imported {run.stdout.strip()} before answering {argv}"


def test_the_qt_package_list_is_the_windows_own(tmp_path: Path) -> None:
    """cli.QT_PACKAGES copies gui.app.XCB_PACKAGES (read without importing Qt)."""
    import ast

    tree = ast.parse((REPO / "segstudio" / "gui" / "app.py").read_text(encoding="utf-8"))
    values = [
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "XCB_PACKAGES" for t in node.targets)
    ]
    assert values == [cli.QT_PACKAGES]
    assert "libxcb-xinerama0" not in cli.QT_PACKAGES  # Qt 5 only


@pytest.mark.parametrize(
    ("error", "needle"),
    [
        (
            ImportError("libglib-2.0.so.0: cannot open shared object file: No such file"),
            "libglib-2.0.so.0: cannot open shared object file",
        ),
        (ModuleNotFoundError("No module named 'PySide6'"), "pip install -e ."),
    ],
)
def test_a_window_that_cannot_load_qt_says_what_to_install(
    error: ImportError,
    needle: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """On a minimal Linux, importing PySide6 fails before the window can explain."""
    import types

    def fail(name: str) -> None:
        raise error

    broken = types.ModuleType("segstudio.gui.app")
    broken.__getattr__ = fail  # type: ignore[method-assign]
    monkeypatch.setitem(sys.modules, "segstudio.gui.app", broken)
    assert cli.run_gui(None) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("segstudio: error: the window cannot start: ")
    assert needle in err[0]
    if sys.platform.startswith("linux") and not isinstance(error, ModuleNotFoundError):
        assert f"sudo apt-get install {cli.QT_PACKAGES}" in err[0]
