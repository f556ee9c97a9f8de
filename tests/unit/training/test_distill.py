"""Distillation: a fine-tune with a teacher also learns the teacher's answers
where nobody labelled, and refuses a teacher of other classes."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from segstudio.core.errors import TrainingError
from segstudio.core.labelset import UNLABELED, LabelClass, LabelSet
from segstudio.model.files import LoadedModel
from segstudio.model.predictor import Predictor
from segstudio.training.data import Sample, TrainingData
from segstudio.training.loop import fine_tune
from segstudio.training.step import distillation_loss
from tests.unit.training.toy import SHAPES, TINY, drive, scribbled, toy_config


@pytest.fixture(scope="module")
def teacher(data: TrainingData) -> LoadedModel:
    _, result = drive(fine_tune(data, arch=TINY, config=toy_config(epochs=25)))
    assert result is not None and result.after["mean_iou"] > 0.6
    return result.model


def _agreement(a: LoadedModel, b: LoadedModel, data: TrainingData) -> float:
    pa, pb = Predictor(a, precision="fp32"), Predictor(b, precision="fp32")
    same = total = 0
    for s in data.val:
        rgb = s.load()[0]
        same += int((pa.predict(rgb).labels == pb.predict(rgb).labels).sum())
        total += rgb.shape[0] * rgb.shape[1]
    return same / total


def test_a_teacher_fills_in_what_scribbles_leave_out(
    data: TrainingData, teacher: LoadedModel
) -> None:
    sparse = scribbled(data, seed=3)
    cfg = toy_config(epochs=12, val_every_epochs=12, distill_weight=0.8)
    _, alone = drive(
        fine_tune(sparse, arch=TINY, config=toy_config(epochs=12, val_every_epochs=12))
    )
    _, taught = drive(fine_tune(sparse, arch=TINY, config=cfg, teacher=teacher))
    assert alone is not None and taught is not None
    a, t = _agreement(alone.model, teacher, data), _agreement(taught.model, teacher, data)
    assert t > a + 0.02 and t > 0.85
    lineage = taught.model.info.provenance["teacher"]
    assert lineage["distill_weight"] == 0.8 and lineage["arch"]["name"] == TINY.name
    assert "teacher" not in alone.model.info.provenance
    assert all(p.requires_grad for p in taught.model.network.parameters())


def test_a_teacher_of_other_classes_is_refused(data: TrainingData, teacher: LoadedModel) -> None:
    other = LabelSet(
        "other", tuple(LabelClass(n, c.color) for n, c in zip("abc", SHAPES.classes, strict=True))
    )
    odd = TrainingData(data.train, data.val, other, "other")
    with pytest.raises(TrainingError, match="teacher model's classes"):
        fine_tune(odd, arch=TINY, config=toy_config(epochs=1), teacher=teacher)


def test_distillation_loss_is_zero_for_equal_outputs_and_positive_otherwise() -> None:
    x = torch.randn(2, 3, 5, 7)
    assert float(distillation_loss(x, x, 2.0)) == pytest.approx(0.0, abs=1e-6)
    assert float(distillation_loss(x, torch.randn(2, 3, 5, 7), 2.0)) > 0.01


def test_the_teacher_is_left_as_it_was(data: TrainingData, teacher: LoadedModel) -> None:
    before = {k: v.clone() for k, v in teacher.network.state_dict().items()}
    drive(fine_tune(data, arch=TINY, config=toy_config(epochs=1), teacher=teacher))
    assert all(p.requires_grad for p in teacher.network.parameters())
    assert not teacher.network.training
    for k, v in teacher.network.state_dict().items():
        assert torch.equal(v, before[k]) and v.is_contiguous(), k
    _, again = drive(fine_tune(data, init=teacher, config=toy_config(epochs=1)))
    assert again is not None  # it can still be fine-tuned itself


def test_unlabelled_crops_learn_the_teachers_outputs(
    data: TrainingData, teacher: LoadedModel
) -> None:
    blank = TrainingData(
        tuple(
            Sample(s.name, s.image_path, labels=np.full((64, 64), UNLABELED, np.uint8))
            for s in data.train
        ),
        (),
        SHAPES,
        "nothing labelled",
    )
    cfg = toy_config(epochs=12, distill_weight=1.0, class_weighting="none")
    _, taught = drive(fine_tune(blank, arch=TINY, config=cfg, teacher=teacher))
    assert taught is not None and _agreement(taught.model, teacher, data) > 0.85


def test_a_resume_with_another_teacher_is_refused(
    data: TrainingData, teacher: LoadedModel, tmp_path: Path
) -> None:
    cfg = toy_config(epochs=2)
    drive(fine_tune(data, arch=TINY, config=cfg, checkpoint_dir=tmp_path, teacher=teacher))
    with pytest.raises(TrainingError, match="distilled from a teacher, now there is none"):
        drive(fine_tune(data, arch=TINY, config=cfg, checkpoint_dir=tmp_path, resume=True))
    other = copy.deepcopy(teacher)
    with torch.no_grad():
        next(other.network.parameters()).add_(0.01)
    with pytest.raises(TrainingError, match="another teacher"):
        drive(
            fine_tune(
                data, arch=TINY, config=cfg, checkpoint_dir=tmp_path, resume=True, teacher=other
            )
        )
    _, again = drive(
        fine_tune(
            data, arch=TINY, config=cfg, checkpoint_dir=tmp_path, resume=True, teacher=teacher
        )
    )
    assert again is not None
