"""Checkpoints: written atomically as training goes, resumed to the same end, refused
for another run."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from segstudio.core.errors import TrainingError
from segstudio.model.files import new_model, save_model
from segstudio.training import loop
from segstudio.training.checkpoint import (
    CHECKPOINT_NAME,
    check_same_run,
    checkpoint_info,
    read_checkpoint,
    run_identity,
)
from segstudio.training.data import TrainingData
from segstudio.training.loop import fine_tune
from tests.unit.training.toy import SHAPES, TINY, drive, losses, toy_config, weights_of


def test_cancel_is_prompt_and_leaves_nothing_behind(data: TrainingData, tmp_path: Path) -> None:
    threads = threading.active_count()
    ckpt = tmp_path / "ckpt"
    gen = fine_tune(data, arch=TINY, config=toy_config(epochs=50, checkpoint_every_s=1e-6),
                    checkpoint_dir=ckpt)  # fmt: skip
    for p in gen:
        if p.kind == "step" and p.step == 5:
            break
    t = time.perf_counter()
    gen.close()
    assert time.perf_counter() - t < 1.0
    assert sorted(os.listdir(ckpt)) == [CHECKPOINT_NAME]  # no temporary files
    assert checkpoint_info(ckpt)["step"] == 4  # the last one written before the close
    assert threading.active_count() == threads


def test_resume_reaches_the_same_end(data: TrainingData, tmp_path: Path) -> None:
    cfg = toy_config(epochs=3, checkpoint_every_s=1e-6)
    full_seen, full = drive(fine_tune(data, arch=TINY, config=cfg))
    assert full is not None
    ckpt = tmp_path / "ckpt"
    first, none = drive(fine_tune(data, arch=TINY, config=cfg, checkpoint_dir=ckpt), 5)
    assert none is None and checkpoint_info(ckpt)["step"] == 4
    rest, resumed = drive(fine_tune(data, arch=TINY, config=cfg, checkpoint_dir=ckpt, resume=True))
    assert resumed is not None
    assert any(p.kind == "message" and "resumed from step 4" in p.message for p in rest)
    assert [p.step for p in rest if p.kind == "step"] == list(range(5, 10))
    assert resumed.model.info.provenance["steps"] == 9 == full.model.info.provenance["steps"]
    # fp32 on the CPU: the resumed run retraces the uninterrupted one exactly
    assert losses(first)[:4] + losses(rest) == losses(full_seen)
    for k, v in weights_of(full).items():
        torch.testing.assert_close(resumed.model.network.state_dict()[k], v, rtol=0, atol=0)
    with pytest.raises(TrainingError, match=r"another training run.*lr 0\.01 -> 0\.02"):
        drive(fine_tune(data, arch=TINY, config=toy_config(epochs=3, lr=2e-2), checkpoint_dir=ckpt,
                         resume=True))  # fmt: skip
    other = TrainingData(data.train[:8], data.val, SHAPES, "fewer")
    with pytest.raises(TrainingError, match="training data differ"):
        drive(fine_tune(other, arch=TINY, config=cfg, checkpoint_dir=ckpt, resume=True))
    with pytest.raises(TrainingError, match="no checkpoint"):
        fine_tune(data, arch=TINY, config=cfg, checkpoint_dir=tmp_path / "none", resume=True)


def test_training_time_counts_every_resumed_run(
    data: TrainingData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = toy_config(epochs=2, checkpoint_every_s=1e-6)
    ckpt = tmp_path / "ckpt"
    _, none = drive(fine_tune(data, arch=TINY, config=cfg, checkpoint_dir=ckpt), 3)
    assert none is None
    read = loop.read_checkpoint

    def an_hour_earlier(folder: Path):  # as if the first run had trained for an hour
        meta, path = read(folder)
        return {**meta, "elapsed_s": meta["elapsed_s"] + 3600.0}, path

    monkeypatch.setattr(loop, "read_checkpoint", an_hour_earlier)
    _, resumed = drive(fine_tune(data, arch=TINY, config=cfg, checkpoint_dir=ckpt, resume=True))
    assert resumed is not None
    assert 3600 < resumed.model.info.provenance["duration_s"] < 3600 + 600


def test_a_file_that_is_no_checkpoint_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "ckpt"
    folder.mkdir()
    with pytest.raises(TrainingError, match="no checkpoint"):
        read_checkpoint(folder)
    path = folder / CHECKPOINT_NAME
    path.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(TrainingError, match="not a readable checkpoint file"):
        read_checkpoint(folder)
    assert checkpoint_info(folder) is None
    save_model(path, new_model(TINY, SHAPES))  # a model file is a safetensors file too
    with pytest.raises(TrainingError, match="not a SegStudio training checkpoint"):
        read_checkpoint(folder)
    save_file({"x": torch.zeros(1)}, str(path), metadata={"segstudio.checkpoint": "{oops"})
    with pytest.raises(TrainingError, match="checkpoint metadata is not valid JSON"):
        read_checkpoint(folder)
    newer = {"format": "segstudio.checkpoint", "version": 99}
    save_file(
        {"x": torch.zeros(1)}, str(path), metadata={"segstudio.checkpoint": json.dumps(newer)}
    )
    with pytest.raises(TrainingError, match="newer SegStudio"):
        read_checkpoint(folder)


def test_check_same_run_names_every_difference(data: TrainingData, tmp_path: Path) -> None:
    cfg = toy_config()
    meta = run_identity(data, cfg, TINY.to_dict(), 1)
    check_same_run(meta, tmp_path, data=data, config=cfg, arch=TINY.to_dict(), world_size=1)
    # a resumed run may change where it runs and how often it saves
    moved = toy_config(device="auto", checkpoint_every_s=5.0)
    check_same_run(meta, tmp_path, data=data, config=moved, arch=TINY.to_dict(), world_size=1)
    with pytest.raises(TrainingError) as err:
        check_same_run(meta, tmp_path, data=data, config=toy_config(optimizer="sgd"),
                       arch={"name": "unet"}, world_size=2)  # fmt: skip
    text = str(err.value)
    assert "optimizer 'adamw' -> 'sgd'" in text and "architecture differs" in text
    assert "made by 1 process(es), now 2" in text
