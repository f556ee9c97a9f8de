"""The one evaluator: per-image progress, metrics that match a confusion matrix computed
by hand, a Predictor's predictions (what the CLI scores), void values, the verdict."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.core.errors import TrainingError
from segstudio.core.labelset import UNLABELED
from segstudio.core.metrics import ConfusionMatrix
from segstudio.model.files import LoadedModel, new_model
from segstudio.model.predictor import Predictor
from segstudio.training.data import Sample, TrainingData
from segstudio.training.evaluate import evaluate, score, verdict
from tests.unit.training.toy import SHAPES, SIZE, TINY


@pytest.fixture(scope="module")
def model() -> LoadedModel:
    return new_model(TINY, SHAPES, seed=1)


def test_score_yields_per_image_and_returns_the_metrics(data: TrainingData) -> None:
    def all_ground(rgb: np.ndarray) -> np.ndarray:
        return np.zeros(rgb.shape[:2], np.uint8)

    steps = score(all_ground, data.val, SHAPES)
    done = []
    with pytest.raises(StopIteration) as stop:
        while True:
            done.append(next(steps))
    metrics = stop.value.value
    assert done == [1, 2, 3]
    cm = ConfusionMatrix(3)
    for s in data.val:
        labels = s.load_labels()
        cm.update(np.zeros_like(labels), labels)
    assert metrics == {**cm.compute().to_dict(), "images": 3, "class_names": list(SHAPES.names)}


def test_evaluate_with_a_predictor_scores_its_predictions(
    data: TrainingData, model: LoadedModel
) -> None:
    predictor = Predictor(model, device="cpu", precision="fp32")
    seen: list[int] = []
    metrics = evaluate(model, data.val, predictor=predictor, on_image=seen.append)
    assert seen == [1, 2, 3] and metrics["images"] == 3
    cm = ConfusionMatrix(3)
    for s in data.val:
        rgb, labels, _ = s.load()
        cm.update(predictor.predict(rgb).labels, labels)
    assert metrics["mean_iou"] == pytest.approx(cm.compute().mean_iou, abs=1e-12)
    # the training loop's own forward pass scores the same network alike
    assert evaluate(model, data.val, device="cpu")["mean_iou"] == pytest.approx(
        metrics["mean_iou"], abs=0.02
    )


def test_a_void_value_is_not_counted_and_other_values_are_refused(
    tmp_path: Path, data: TrainingData, model: LoadedModel
) -> None:
    """As ``segstudio eval --void 11`` reads a dataset: the void value becomes unlabeled."""
    sample = data.val[0]
    labels = sample.load_labels().copy()
    labels[:8] = 11
    path = tmp_path / "void.png"
    Image.fromarray(labels).save(path)
    predictor = Predictor(model, device="cpu", precision="fp32")
    with_void = evaluate(model, [Sample("v", sample.image_path, label_path=path, void=11)],
                         predictor=predictor)  # fmt: skip
    unlabeled = labels.copy()
    unlabeled[:8] = UNLABELED
    same = evaluate(model, [Sample("u", sample.image_path, labels=unlabeled)], predictor=predictor)
    assert with_void == same and with_void["num_pixels"] == (SIZE - 8) * SIZE
    with pytest.raises(TrainingError, match=r"void\.png: labels hold value\(s\) 11.*--void"):
        evaluate(model, [Sample("v", sample.image_path, label_path=path)], predictor=predictor)


@pytest.mark.parametrize(
    ("before", "after", "kept", "improved", "needle"),
    [
        (None, None, False, None, "no validation images"),
        (None, 0.5, False, None, "new head or new model"),
        (0.5, 0.6, False, True, "better on 3 validation image(s)"),
        (0.6, 0.5, False, False, "NOT better"),
        (0.6, 0.6, True, False, "no epoch beat the starting model"),
    ],
)
def test_verdict(
    before: float | None, after: float | None, kept: bool, improved: bool | None, needle: str
) -> None:
    def metrics(miou: float | None) -> dict | None:
        return None if miou is None else {"mean_iou": miou, "images": 3, "num_pixels": 5000}

    got, sentence = verdict(metrics(before), metrics(after), 1000, kept_start=kept)
    assert got is improved and needle in sentence
    few, sentence = verdict(metrics(0.5), metrics(0.6), 10**6, kept_start=False)
    assert few is None and "too few to judge" in sentence
