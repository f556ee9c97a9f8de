"""Tests of segstudio.core.metrics against hand-computed and brute-force values."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from segstudio.core.errors import LabelConversionError, UnknownIndicesError
from segstudio.core.metrics import ConfusionMatrix, SegmentationMetrics


def brute_force(
    pred: np.ndarray, target: np.ndarray, n: int, ignore: int | None = None
) -> SegmentationMetrics:
    """The FCN-paper definitions, computed pixel by pixel in plain Python."""
    conf = [[0] * n for _ in range(n)]
    t = [0] * n
    for p, g in zip(pred.ravel().tolist(), target.ravel().tolist(), strict=True):
        if g == 255 or g == ignore:
            continue
        t[g] += 1
        if 0 <= p < n:
            conf[g][p] += 1
    predicted = [sum(conf[i][j] for i in range(n)) for j in range(n)]
    total = sum(t)
    iou: list[float | None] = []
    acc: list[float | None] = []
    for i in range(n):
        union = t[i] + predicted[i] - conf[i][i]
        scored = i != ignore
        iou.append(conf[i][i] / union if union and scored else None)
        acc.append(conf[i][i] / t[i] if t[i] and scored else None)
    ious = [v for v in iou if v is not None]
    accs = [v for v in acc if v is not None]
    return SegmentationMetrics(
        pixel_accuracy=sum(conf[i][i] for i in range(n)) / total if total else 0.0,
        mean_accuracy=sum(accs) / len(accs) if accs else 0.0,
        mean_iou=sum(ious) / len(ious) if ious else 0.0,
        fw_iou=sum(t[i] * (iou[i] or 0.0) for i in range(n)) / total if total else 0.0,
        per_class_iou=tuple(iou),
        per_class_accuracy=tuple(acc),
        num_pixels=total,
    )


def assert_metrics_close(a: SegmentationMetrics, b: SegmentationMetrics) -> None:
    for field in ("pixel_accuracy", "mean_accuracy", "mean_iou", "fw_iou"):
        assert getattr(a, field) == pytest.approx(getattr(b, field), abs=1e-12), field
    assert a.num_pixels == b.num_pixels
    for field in ("per_class_iou", "per_class_accuracy"):
        x, y = getattr(a, field), getattr(b, field)
        assert len(x) == len(y)
        for u, v in zip(x, y, strict=True):
            assert (u is None) == (v is None), field
            if u is not None:
                assert u == pytest.approx(v, abs=1e-12), field


def test_hand_computed_example() -> None:
    # Ground truth and prediction over 3 classes; 255 is unlabeled, 7 an invalid prediction.
    target = np.array([[0, 0, 0, 1], [1, 1, 2, 255]], dtype=np.uint8)
    pred = np.array([[0, 0, 1, 1], [2, 7, 2, 0]], dtype=np.uint8)
    cm = ConfusionMatrix(3)
    cm.update(pred, target)
    np.testing.assert_array_equal(cm.matrix, [[2, 1, 0], [0, 1, 1], [0, 0, 1]])
    np.testing.assert_array_equal(cm.invalid_predictions, [0, 1, 0])
    m = cm.compute()
    # t = (3, 3, 1), n_ii = (2, 1, 1), predicted = (2, 2, 2)
    assert m.num_pixels == 7
    assert m.pixel_accuracy == pytest.approx(4 / 7)
    assert m.per_class_accuracy == pytest.approx((2 / 3, 1 / 3, 1.0))
    assert m.mean_accuracy == pytest.approx((2 / 3 + 1 / 3 + 1) / 3)
    # IoU_i = n_ii / (t_i + predicted_i - n_ii)
    iou = (2 / (3 + 2 - 2), 1 / (3 + 2 - 1), 1 / (1 + 2 - 1))
    assert m.per_class_iou == pytest.approx(iou)
    assert m.mean_iou == pytest.approx(sum(iou) / 3)
    assert m.fw_iou == pytest.approx((3 * iou[0] + 3 * iou[1] + 1 * iou[2]) / 7)


def test_perfect_prediction() -> None:
    target = np.array([[0, 1], [2, 2]], dtype=np.uint8)
    cm = ConfusionMatrix(4)
    cm.update(target, target)
    m = cm.compute()
    assert (m.pixel_accuracy, m.mean_accuracy, m.mean_iou, m.fw_iou) == (1.0, 1.0, 1.0, 1.0)
    assert m.per_class_iou == (1.0, 1.0, 1.0, None)  # class 3 is nowhere
    assert m.per_class_accuracy == (1.0, 1.0, 1.0, None)


def test_class_predicted_but_absent_from_ground_truth() -> None:
    cm = ConfusionMatrix(2)
    cm.update(np.array([[1, 1]]), np.array([[0, 0]]))
    m = cm.compute()
    assert m.per_class_iou == (0.0, 0.0)
    assert m.per_class_accuracy == (0.0, None)
    assert m.mean_iou == 0.0
    assert m.mean_accuracy == 0.0


def test_empty_matrix_gives_zeros_without_warnings() -> None:
    cm = ConfusionMatrix(3, ignore_index=11)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = cm.compute()
        cm.update(np.full((2, 2), 11, np.uint8), np.full((2, 2), 255, np.uint8))
        m2 = cm.compute()
    for result in (m, m2):
        assert (result.pixel_accuracy, result.mean_accuracy, result.mean_iou, result.fw_iou) == (
            0.0,
            0.0,
            0.0,
            0.0,
        )
        assert result.per_class_iou == (None, None, None)
        assert result.per_class_accuracy == (None, None, None)
        assert result.num_pixels == 0


def test_ignore_index_outside_classes() -> None:
    target = np.array([[0, 11, 1, 255]], dtype=np.uint8)
    pred = np.array([[0, 1, 1, 1]], dtype=np.uint8)
    cm = ConfusionMatrix(2, ignore_index=11)
    cm.update(pred, target)
    np.testing.assert_array_equal(cm.matrix, [[1, 0], [0, 1]])
    assert cm.compute().pixel_accuracy == 1.0
    # Without ignore_index, 11 is not a class of 2 and must be reported.
    with pytest.raises(UnknownIndicesError, match=r"11 x 1") as info:
        ConfusionMatrix(2).update(pred, target)
    assert info.value.counts == ((11, 1),)


def test_ignore_index_that_is_a_class() -> None:
    # Ignoring class 0 (e.g. "background"): its pixels are skipped and it gets no score,
    # but predicting it elsewhere is still wrong.
    target = np.array([[0, 0, 1, 2, 2]], dtype=np.uint8)
    pred = np.array([[1, 2, 0, 2, 2]], dtype=np.uint8)
    cm = ConfusionMatrix(3, ignore_index=0)
    cm.update(pred, target)
    m = cm.compute()
    assert m.num_pixels == 3
    assert m.per_class_iou[0] is None and m.per_class_accuracy[0] is None
    assert m.per_class_accuracy[1:] == (0.0, 1.0)
    assert m.mean_accuracy == 0.5
    assert m.mean_iou == pytest.approx((0.0 + 1.0) / 2)
    assert_metrics_close(m, brute_force(pred, target, 3, ignore=0))


def test_target_out_of_range_raises() -> None:
    cm = ConfusionMatrix(3)
    with pytest.raises(UnknownIndicesError, match=r"0\.\.2.*5 x 2, 3 x 1") as info:
        cm.update(np.zeros((1, 4), np.uint8), np.array([[5, 3, 5, 0]], np.uint8))
    assert info.value.counts == ((5, 2), (3, 1))
    with pytest.raises(UnknownIndicesError, match=r"-1 x 1"):
        cm.update(np.zeros(2, np.int64), np.array([-1, 0], np.int64))
    assert cm.matrix.sum() == 0  # a failed update adds nothing


@pytest.mark.parametrize(
    ("pred", "target", "pattern"),
    [
        (np.zeros((2, 3), np.uint8), np.zeros((3, 2), np.uint8), "shape"),
        (np.zeros((2, 2), np.float32), np.zeros((2, 2), np.uint8), "prediction.*float32"),
        (np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.float64), "ground truth.*float64"),
    ],
)
def test_update_rejects_bad_input(pred: np.ndarray, target: np.ndarray, pattern: str) -> None:
    with pytest.raises(LabelConversionError, match=pattern):
        ConfusionMatrix(3).update(pred, target)


@pytest.mark.parametrize("n", [0, 256, 2.5, True, None])
def test_bad_num_classes(n: object) -> None:
    with pytest.raises(LabelConversionError, match="num_classes"):
        ConfusionMatrix(n)  # type: ignore[arg-type]


def test_update_accumulates_merge_and_reset() -> None:
    rng = np.random.default_rng(0)
    preds = [rng.integers(0, 5, (7, 9)).astype(np.uint8) for _ in range(3)]
    targets = [rng.integers(0, 5, (7, 9)).astype(np.uint8) for _ in range(3)]
    targets[1][2:4] = 255

    whole = ConfusionMatrix(5)
    whole.update(np.concatenate(preds), np.concatenate(targets))

    parts = ConfusionMatrix(5)
    for p, t in zip(preds, targets, strict=True):
        parts.update(p, t)
    np.testing.assert_array_equal(parts.matrix, whole.matrix)

    a, b = ConfusionMatrix(5), ConfusionMatrix(5)
    a.update(preds[0], targets[0])
    b.update(np.concatenate(preds[1:]), np.concatenate(targets[1:]))
    a.merge(b)
    np.testing.assert_array_equal(a.matrix, whole.matrix)
    assert a.compute() == whole.compute()

    m = a.matrix
    m[:] = 0  # a copy
    assert a.matrix.sum() == whole.matrix.sum()
    assert a.matrix.dtype == np.int64

    a.reset()
    assert a.matrix.sum() == 0 and a.compute().num_pixels == 0


def test_merge_mismatch() -> None:
    with pytest.raises(LabelConversionError, match="different"):
        ConfusionMatrix(3).merge(ConfusionMatrix(4))
    with pytest.raises(LabelConversionError, match="different"):
        ConfusionMatrix(3).merge(ConfusionMatrix(3, ignore_index=11))


def test_to_dict_is_json_safe() -> None:
    cm = ConfusionMatrix(3)
    cm.update(np.array([[0, 1]], np.uint8), np.array([[0, 0]], np.uint8))
    d = cm.compute().to_dict()
    text = json.dumps(d, allow_nan=False)
    assert json.loads(text) == d
    assert d["per_class_iou"] == [0.5, 0.0, None]
    assert d["per_class_accuracy"] == [0.5, None, None]
    assert d["num_pixels"] == 2
    assert type(d["pixel_accuracy"]) is float
    assert all(type(v) is float for v in d["per_class_iou"] if v is not None)


@st.composite
def pred_target(draw: st.DrawFn) -> tuple[int, int | None, np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 12))
    ignore = draw(st.one_of(st.none(), st.integers(0, 254)))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=12))
    target_values = st.one_of(st.integers(0, n - 1), st.just(255))
    if ignore is not None:
        target_values = st.one_of(target_values, st.just(ignore))
    target = draw(hnp.arrays(np.uint8, shape, elements=target_values))
    pred = draw(hnp.arrays(np.uint8, shape, elements=st.integers(0, max(n + 2, 20))))
    return n, ignore, pred, target


@given(pred_target())
@settings(max_examples=150, deadline=None)
def test_matches_brute_force(case: tuple[int, int | None, np.ndarray, np.ndarray]) -> None:
    n, ignore, pred, target = case
    cm = ConfusionMatrix(n, ignore_index=ignore)
    cm.update(pred, target)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = cm.compute()
    assert_metrics_close(m, brute_force(pred, target, n, ignore))
    for v in (m.pixel_accuracy, m.mean_accuracy, m.mean_iou, m.fw_iou):
        assert 0.0 <= v <= 1.0 and not math.isnan(v)
