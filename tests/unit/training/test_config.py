"""The training recipe: defaults, validation, JSON round trip, modes as enums."""

from __future__ import annotations

import json
from typing import Any

import pytest

from segstudio.core.errors import TrainingError
from segstudio.training.config import (
    AugmentStrength,
    ClassWeighting,
    Optimizer,
    Precision,
    Schedule,
    TrainConfig,
)


def test_config_defaults_and_round_trip() -> None:
    cfg = TrainConfig()
    assert cfg.epochs == 20 and cfg.minutes is None
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    timed = TrainConfig(minutes=1.5)
    assert timed.epochs is None and TrainConfig.from_dict(timed.to_dict()) == timed
    json.dumps(cfg.to_dict())


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"epochs": 2, "minutes": 1.0}, "not both"),
        ({"epochs": 0}, "epochs"),
        ({"minutes": -1.0}, "minutes"),
        ({"batch_size": 0}, "batch_size"),
        ({"lr": float("nan")}, "lr"),
        ({"optimizer": "adam"}, "optimizer"),
        ({"schedule": "step"}, "schedule"),
        ({"precision": "fp16"}, "precision"),
        ({"class_weighting": "inverse"}, "class_weighting"),
        ({"freeze_encoder": 1}, "freeze_encoder"),
        ({"val_every_epochs": 0}, "val_every_epochs"),
        ({"augment": "heavy"}, "augment"),
        ({"refit_all": "yes"}, "refit_all"),
    ],
)
def test_config_rejects_bad_values(kw: dict[str, Any], needle: str) -> None:
    with pytest.raises(TrainingError, match=needle):
        TrainConfig(**kw)


def test_config_from_dict_rejects_unknown_keys() -> None:
    with pytest.raises(TrainingError, match="unknown training setting"):
        TrainConfig.from_dict({"epochs": 3, "momentum": 0.9})


def test_modes_are_enums_that_take_and_give_plain_strings() -> None:
    """The CLI, a window's settings and old checkpoints say "sgd"; the recipe holds enums."""
    cfg = TrainConfig(optimizer="sgd", schedule="poly", class_weighting="none", precision="bf16")
    assert cfg.optimizer is Optimizer.SGD and cfg.schedule is Schedule.POLY
    assert cfg.class_weighting is ClassWeighting.NONE and cfg.precision is Precision.BF16
    assert cfg.optimizer == "sgd"  # a StrEnum: callers comparing with strings still work
    assert cfg == TrainConfig(
        optimizer=Optimizer.SGD,
        schedule=Schedule.POLY,
        class_weighting=ClassWeighting.NONE,
        precision=Precision.BF16,
    )
    doc = cfg.to_dict()
    assert doc["optimizer"] == "sgd" and type(doc["optimizer"]) is str
    assert json.loads(json.dumps(doc))["schedule"] == "poly"
    assert TrainConfig.from_dict(json.loads(json.dumps(doc))) == cfg
    assert TrainConfig().to_dict()["class_weighting"] == "median_frequency"
    light = TrainConfig(augment="light")
    assert light.augment is AugmentStrength.LIGHT and light.to_dict()["augment"] == "light"
    assert TrainConfig().augment is AugmentStrength.DEFAULT
