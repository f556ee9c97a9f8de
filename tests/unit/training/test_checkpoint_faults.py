"""A checkpoint that cannot be written (a full disk) costs the checkpoint, not the run;
temporary checkpoint files of killed runs are swept by the next run."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from safetensors import SafetensorError

from segstudio.cli import main
from segstudio.model.files import load_model
from segstudio.training import checkpoint
from segstudio.training.checkpoint import CHECKPOINT_NAME, checkpoint_info
from segstudio.training.data import TrainingData
from segstudio.training.loop import fine_tune
from tests.unit.training.toy import TINY, drive, toy_config


def _enospc(*_a: object, **_k: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _safetensors_full(*_a: object, **_k: object) -> None:
    raise SafetensorError(
        "Error while serializing: I/O error: No space left on device (os error 28)"
    )


@pytest.mark.parametrize("fault", [_enospc, _safetensors_full], ids=["OSError", "SafetensorError"])
def test_a_failed_checkpoint_write_warns_and_the_run_ends_with_its_model(
    data: TrainingData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault
) -> None:
    """Before: the SafetensorError went out of the generator and the run was lost."""
    ckpt = tmp_path / "ckpt"
    monkeypatch.setattr(checkpoint, "save_file", fault)
    seen, result = drive(
        fine_tune(
            data,
            arch=TINY,
            config=toy_config(epochs=2, checkpoint_every_s=1e-6),
            checkpoint_dir=ckpt,
        )
    )
    assert result is not None and result.model.info.provenance["steps"] == 6
    warnings = [p.message for p in seen if p.kind == "message" and "checkpoint" in p.message]
    assert warnings and "no space left on device" in warnings[0].lower()
    assert str(ckpt / CHECKPOINT_NAME) in warnings[0]
    assert not [p for p in seen if p.kind == "checkpoint"]
    assert os.listdir(ckpt) == []  # no half-written file, no temporary one


def test_checkpoints_resume_writing_when_space_comes_back(
    data: TrainingData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ckpt = tmp_path / "ckpt"
    real = checkpoint.save_file
    calls = {"n": 0}

    def full_twice(*a: object, **k: object) -> None:
        calls["n"] += 1
        if calls["n"] <= 2:
            _enospc()
        real(*a, **k)

    monkeypatch.setattr(checkpoint, "save_file", full_twice)
    seen, result = drive(
        fine_tune(
            data,
            arch=TINY,
            config=toy_config(epochs=2, checkpoint_every_s=1e-6),
            checkpoint_dir=ckpt,
        )
    )
    assert result is not None
    assert sum("checkpoint" in p.message for p in seen if p.kind == "message") == 2
    assert checkpoint_info(ckpt)["step"] == 6  # the final checkpoint was written


def test_the_cli_writes_out_when_checkpoints_fail(
    shapes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """``train`` on a disk too full for checkpoints: a warning, then --out and exit 0."""
    monkeypatch.setattr(checkpoint, "save_file", _safetensors_full)
    out = tmp_path / "m.safetensors"
    code = main(["train", str(shapes), "--arch", "segnet_basic", "--width", "0.25",
                 "--epochs", "1", "--crop", "64", "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    assert "checkpoint" in err and "no space left on device" in err.lower()
    assert "Traceback" not in err
    assert load_model(out).info.provenance["steps"] >= 1


def test_temporary_checkpoints_of_killed_runs_are_swept(data: TrainingData, tmp_path: Path) -> None:
    """8 ``.checkpoint.*.tmp.safetensors`` piled up after 30 kills, some full size."""
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    left = [ckpt / f".{CHECKPOINT_NAME}.{i:08x}.tmp.safetensors" for i in range(3)]
    for path in left:
        path.write_bytes(b"\0" * 1000)
    mine = [ckpt / "notes.tmp.safetensors", ckpt / ".checkpoint.safetensors.backup"]
    for path in mine:
        path.write_bytes(b"keep")
    _, result = drive(fine_tune(data, arch=TINY, config=toy_config(epochs=1), checkpoint_dir=ckpt))
    assert result is not None
    assert sorted(os.listdir(ckpt)) == sorted([CHECKPOINT_NAME, *(p.name for p in mine)])


def test_a_killed_save_of_out_is_swept_by_the_next_train(
    shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "m.safetensors"
    left = tmp_path / ".m.safetensors.0badcafe.tmp.safetensors"
    left.write_bytes(b"\0" * 1000)
    code = main(["train", str(shapes), "--arch", "segnet_basic", "--width", "0.25",
                 "--epochs", "1", "--crop", "64", "--out", str(out)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert not left.exists() and out.is_file()
