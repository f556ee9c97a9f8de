"""The optimisation step: the weighted loss, labels refused before training, NaN and
out-of-memory guards, cancel inside a step, class-balanced crops."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open

from segstudio.core.errors import TrainingError
from segstudio.core.labelset import UNLABELED
from segstudio.training import step
from segstudio.training.checkpoint import CHECKPOINT_NAME, checkpoint_info
from segstudio.training.data import TrainingData, from_folder
from segstudio.training.loop import fine_tune
from tests.unit.training.toy import SIZE, TINY, drive, toy_config, write_dataset


def test_corrected_pixels_weigh_more() -> None:
    target = torch.tensor([[[0, 1], [UNLABELED, 1]]])
    logits = torch.zeros(1, 3, 2, 2)
    w = torch.tensor([[[1.0, 2.0], [0.0, 1.0]]])
    loss = step.weighted_cross_entropy(logits, target, w)
    assert loss.item() == pytest.approx(4 * np.log(3), rel=1e-6)


def test_labels_outside_the_classes_are_refused(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "d", n=3)
    labels = np.full((SIZE, SIZE), 7, np.uint8)
    Image.fromarray(labels).save(root / "labels" / "img00.png")
    d = from_folder(root, val_fraction=0.0)
    with pytest.raises(TrainingError, match=r"value\(s\) 7,.*--void"):
        drive(fine_tune(d, arch=TINY, config=toy_config(epochs=1)))


def test_nan_loss_stops_with_the_last_good_weights(
    data: TrainingData, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real = step.weighted_cross_entropy
    calls = {"n": 0}

    def poisoned(*args: Any) -> torch.Tensor:
        calls["n"] += 1
        out = real(*args)
        return out * float("nan") if calls["n"] == 4 else out

    monkeypatch.setattr(step, "weighted_cross_entropy", poisoned)
    ckpt = tmp_path / "ckpt"
    cfg = toy_config(epochs=3, checkpoint_every_s=1e-6)
    seen, result = drive(fine_tune(data, arch=TINY, config=cfg, checkpoint_dir=ckpt))
    assert result is not None and result.stopped_early is not None
    assert "NaN at step 4" in result.stopped_early
    assert [p.step for p in seen if p.kind == "step"] == [1, 2, 3]
    assert any(p.kind == "message" and "NaN" in p.message for p in seen)
    assert result.model.info.provenance["stopped_early"] == result.stopped_early
    state = result.model.network.state_dict()
    for v in state.values():
        assert torch.isfinite(v.float()).all()
    # the weights (and batch-norm statistics) are those of step 3, the last checkpoint
    assert checkpoint_info(ckpt)["step"] == 3
    with safe_open(str(ckpt / CHECKPOINT_NAME), framework="pt") as f:
        for k, v in state.items():
            torch.testing.assert_close(f.get_tensor(f"model.{k}"), v, rtol=0, atol=0)


def test_out_of_memory_splits_the_batch_and_goes_on(
    data: TrainingData, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = step._forward
    calls = {"n": 0}

    def flaky(network: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        if calls["n"] == 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(network, x)

    monkeypatch.setattr(step, "_forward", flaky)
    seen, result = drive(fine_tune(data, arch=TINY, config=toy_config(epochs=2)))
    assert result is not None and result.stopped_early is None
    notes = [p.message for p in seen if p.kind == "message" and "out of memory" in p.message]
    assert len(notes) == 1 and "parts of 1" in notes[0]  # batch 3 -> micro-batches of 1
    assert [p.step for p in seen if p.kind == "step"] == list(range(1, 7))
    assert result.model.info.provenance["micro_batch"] == 1


def test_cancel_callback_interrupts_a_step(data: TrainingData) -> None:
    """The cancel callback is polled inside the step: the step in flight is dropped."""
    import itertools

    from segstudio.training.step import TrainingCancelled

    for polls in (2, 7):  # inside the first step's forward, then inside its backward
        calls = itertools.count()
        gen = fine_tune(
            data, arch=TINY, config=toy_config(), cancel=lambda n=polls, c=calls: next(c) >= n
        )
        kinds = []
        with pytest.raises(TrainingCancelled):
            for p in gen:
                kinds.append(p.kind)
        assert "step" not in kinds  # the first step never finished
    # a run that is not cancelled returns a model without the polling hooks
    result = drive(fine_tune(data, arch=TINY, config=toy_config(epochs=1), cancel=lambda: False))[1]
    assert result is not None
    assert not any(m._forward_pre_hooks for m in result.model.network.modules())


def test_balanced_crops_train(data: TrainingData) -> None:
    _, result = drive(fine_tune(data, arch=TINY, config=toy_config(balanced_crops=True)))
    assert result is not None and result.model.info.provenance["recipe"]["balanced_crops"]
