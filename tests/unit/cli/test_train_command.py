"""``segstudio train`` on the toy task: a loadable model, every architecture through
train, predict and eval, resume, and one-line errors for bad arguments."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.cli import main
from segstudio.model.arch import ARCHITECTURES
from segstudio.model.files import load_model
from segstudio.training.checkpoint import CHECKPOINT_NAME
from tests.unit.training.toy import SHAPES, SIZE, write_dataset


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("shapes"))


def test_cli_train_writes_a_loadable_model(
    shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "m.safetensors"
    code = main(["train", str(shapes), "--arch", "segnet_basic", "--width", "0.25",
                 "--epochs", "2", "--crop", "64", "--out", str(out)])  # fmt: skip
    assert code == 0
    model = load_model(out)
    assert model.info.labelset.same_classes(SHAPES) and model.info.arch.name == "segnet_basic"
    assert (tmp_path / "m.safetensors.ckpt" / CHECKPOINT_NAME).is_file()
    text = capsys.readouterr().out
    assert "after:  mean IoU" in text and "improved: not comparable" in text
    code = main(["train", str(shapes), "--init", str(out), "--epochs", "1", "--crop", "64",
                 "--out", str(tmp_path / "m2.safetensors")])  # fmt: skip
    assert code == 0
    text = capsys.readouterr().out
    assert "before: mean IoU" in text and "improved: " in text
    assert load_model(tmp_path / "m2.safetensors").info.provenance["parent"]["path"] == str(out)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_every_architecture_trains_predicts_and_evaluates_from_the_cli(
    arch: str, shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / f"{arch}.safetensors"
    code = main(["train", str(shapes), "--arch", arch, "--width", "0.125", "--epochs", "1",
                 "--crop", "64", "--out", str(out)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert load_model(out).info.arch.name == arch
    pred = tmp_path / "pred"
    assert main(["predict", str(shapes / "images"), "--model", str(out), "--out", str(pred)]) == 0
    for i in range(12):
        index = np.asarray(Image.open(pred / f"img{i:02d}.png"))
        assert index.shape == (SIZE, SIZE) and index.max() < SHAPES.num_classes
    capsys.readouterr()
    code = main(["eval", "--model", str(out), "--images", str(shapes / "images"),
                 "--labels", str(shapes / "labels"), "--json"])  # fmt: skip
    assert code == 0
    assert 0.0 <= json.loads(capsys.readouterr().out)["mean_iou"] <= 1.0


def test_cli_resume_starts_then_continues_the_same_run(
    shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One documented command: the first call starts the run, later calls resume it."""
    out, ckpt = tmp_path / "r.safetensors", tmp_path / "ckpt"
    argv = ["train", str(shapes), "--arch", "segnet_basic", "--width", "0.25", "--epochs", "2",
            "--crop", "64", "--checkpoint-dir", str(ckpt), "--resume",
            "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    assert "starting a new run" in capsys.readouterr().err
    steps = load_model(out).info.provenance["steps"]
    assert main(argv) == 0  # the finished run's checkpoint: nothing left to do
    assert load_model(out).info.provenance["steps"] == steps


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--init", "x.safetensors", "--arch", "segnet"], "not allowed with argument"),
        (["--epochs", "2", "--minutes", "1"], "not allowed with argument"),
        (["--epochs", "0"], "--epochs is 0"),
        (["--batch-size", "0"], "--batch-size is 0"),
        (["--val-fraction", "1.5"], "--val-fraction"),
        (["--arch", "resnet"], "unknown architecture"),
        (["--teacher", "missing.safetensors"], "--teacher missing.safetensors: model file not"),
        (["--teacher", "t.safetensors", "--distill-weight", "2"], "--distill-weight is 2"),
        (["--quick", "--teacher", "t.safetensors"], "--teacher does not apply to --quick"),
    ],
)
def test_cli_train_bad_arguments_exit_2(
    shapes: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    needle: str,
) -> None:
    out = tmp_path / "m.safetensors"
    (tmp_path / "t.safetensors").write_bytes(b"")  # a teacher file that exists
    extra = [str(tmp_path / a) if a == "t.safetensors" else a for a in extra]
    code = main(["train", str(shapes), "--out", str(out), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and needle in err[0], err
    assert not out.exists()


def test_cli_train_bad_paths_exit_2(
    shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", str(shapes), "--out", str(tmp_path / "m.txt")]) == 2
    assert main(["train", str(tmp_path / "nope"), "--out", str(tmp_path / "m.safetensors")]) == 2
    assert main(["train", str(tmp_path), "--out", str(tmp_path / "m.safetensors")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and "not a dataset folder" in err[2]


def test_cli_refuses_to_overwrite_an_earlier_runs_checkpoint(
    shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = tmp_path / "ckpt"
    argv = ["train", str(shapes), "--arch", "segnet_basic", "--width", "0.25", "--epochs", "1",
            "--crop", "64", "--checkpoint-dir", str(ckpt),
            "--out", str(tmp_path / "a.safetensors")]  # fmt: skip
    assert main(argv) == 0
    capsys.readouterr()
    assert main(argv) == 2  # the same command again would start over the old checkpoint
    assert "--resume" in capsys.readouterr().err


def test_cli_train_never_replaces_a_model_without_overwrite(
    shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "trained.safetensors"
    out.write_bytes(b"a model someone trained")
    argv = ["train", str(shapes), "--arch", "segnet_basic", "--width", "0.25", "--epochs", "1",
            "--crop", "64", "--out", str(out)]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "exists" in err[0] and "--overwrite" in err[0]
    assert out.read_bytes() == b"a model someone trained"
    assert main([*argv, "--overwrite", "--checkpoint-dir", str(tmp_path / "c")]) == 0
    assert out.read_bytes() != b"a model someone trained"


def test_cli_distils_a_student_from_a_teacher(
    shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    teacher = tmp_path / "teacher.safetensors"
    assert main(["train", str(shapes), "--arch", "segnet_basic", "--width", "0.25",
                 "--epochs", "2", "--crop", "64", "--out", str(teacher)]) == 0  # fmt: skip
    student = tmp_path / "student.safetensors"
    code = main(["train", str(shapes), "--arch", "segnet_basic", "--width", "0.125",
                 "--epochs", "1", "--crop", "64", "--teacher", str(teacher),
                 "--distill-weight", "0.7", "--out", str(student)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    lineage = load_model(student).info.provenance
    assert (
        lineage["teacher"]["path"] == str(teacher) and lineage["teacher"]["distill_weight"] == 0.7
    )
    assert lineage["recipe"]["distill_weight"] == 0.7
    capsys.readouterr()
    assert main(["model", "info", str(student)]) == 0
    shown = capsys.readouterr().out
    assert "teacher     segnet_basic width 0.25, mean IoU " in shown
    assert f"(then at {teacher}), distilled at weight 0.7" in shown


def _live_model(shapes: Path, tmp_path: Path) -> Path:
    """A live model file (``--quick``) on a one-epoch SegNet."""
    base = tmp_path / "base.safetensors"
    assert main(["train", str(shapes), "--arch", "segnet", "--width", "0.125",
                 "--epochs", "1", "--crop", "64", "--out", str(base)]) == 0  # fmt: skip
    live = tmp_path / "live.safetensors"
    assert main(["train", str(shapes), "--quick", "--init", str(base), "--out", str(live)]) == 0
    return live


def test_a_live_model_teaches_its_own_classes(
    shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    live = _live_model(shapes, tmp_path)
    student = tmp_path / "student.safetensors"
    code = main(["train", str(shapes), "--arch", "segnet_basic", "--width", "0.125",
                 "--epochs", "1", "--crop", "64", "--teacher", str(live),
                 "--out", str(student)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert load_model(student).info.provenance["teacher"]["arch"]["name"] == "live"


def test_a_deep_fine_tune_from_a_live_model_trains_its_segnet(
    shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The live model's frozen SegNet trains again; the lineage names the live model's file."""
    live = _live_model(shapes, tmp_path)
    deep = tmp_path / "deep.safetensors"
    code = main(["train", str(shapes), "--init", str(live), "--epochs", "1", "--crop", "64",
                 "--out", str(deep)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    model = load_model(deep)
    assert model.info.arch.name == "segnet"
    assert model.info.provenance["parent"]["path"] == str(live)
