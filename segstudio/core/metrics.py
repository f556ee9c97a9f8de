"""Segmentation metrics from a confusion matrix.

The definitions are those of Long, Shelhamer and Darrell, "Fully Convolutional
Networks for Semantic Segmentation" (2015), which SegNet also reports. With
``n_ij`` the number of pixels of ground-truth class ``i`` predicted as class
``j`` and ``t_i = sum_j n_ij`` the pixels of class ``i``:

- pixel accuracy ``sum_i n_ii / sum_i t_i``
- mean (class) accuracy ``mean_i n_ii / t_i`` over classes present (``t_i > 0``)
- IoU ``n_ii / (t_i + sum_j n_ji - n_ii)``; mean IoU over classes that occur in
  the ground truth or the prediction
- frequency-weighted IoU ``sum_i t_i IoU_i / sum_i t_i``

Pixels whose ground truth is :data:`~segstudio.core.labelset.UNLABELED` (255)
or the ``ignore_index`` are left out entirely.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from segstudio.core.errors import LabelConversionError, UnknownIndicesError
from segstudio.core.labelset import UNLABELED

__all__ = ["ConfusionMatrix", "SegmentationMetrics"]


@dataclass(frozen=True)
class SegmentationMetrics:
    """Scores of a prediction against ground truth, all in 0..1.

    Attributes
    ----------
    pixel_accuracy : float
        Fraction of counted pixels predicted right.
    mean_accuracy : float
        Mean over classes present in the ground truth of their pixel accuracy.
    mean_iou : float
        Mean intersection-over-union over classes in the ground truth or prediction.
    fw_iou : float
        IoU averaged with each class weighted by its ground-truth pixel count.
    per_class_iou : tuple of float or None
        IoU of each class; None where the class is in neither ground truth nor
        prediction (or is the ignore index).
    per_class_accuracy : tuple of float or None
        Accuracy (recall) of each class; None where the class is absent from the
        ground truth (or is the ignore index).
    num_pixels : int
        Ground-truth pixels counted (unlabeled and ignored pixels excluded).

    All averages are 0.0 when nothing was counted.
    """

    pixel_accuracy: float
    mean_accuracy: float
    mean_iou: float
    fw_iou: float
    per_class_iou: tuple[float | None, ...]
    per_class_accuracy: tuple[float | None, ...]
    num_pixels: int

    def to_dict(self) -> dict[str, Any]:
        """Return the metrics as plain JSON-safe values (floats, ints, lists, None)."""
        return {
            "pixel_accuracy": float(self.pixel_accuracy),
            "mean_accuracy": float(self.mean_accuracy),
            "mean_iou": float(self.mean_iou),
            "fw_iou": float(self.fw_iou),
            "per_class_iou": [None if v is None else float(v) for v in self.per_class_iou],
            "per_class_accuracy": [
                None if v is None else float(v) for v in self.per_class_accuracy
            ],
            "num_pixels": int(self.num_pixels),
        }


class ConfusionMatrix:
    """Accumulates a confusion matrix over any number of (prediction, target) pairs.

    Parameters
    ----------
    num_classes : int
        Number of classes N, 1..255; class ids are 0..N-1.
    ignore_index : int, optional
        A ground-truth value to skip besides 255 (e.g. CamVid's void, 11). If it
        is a class id, that class is also left out of the per-class and mean
        scores, since it can never be right.

    Notes
    -----
    Predictions outside 0..N-1 count as wrong: they add to ``t_i`` of the true
    class but to no predicted class. They are kept in :attr:`invalid_predictions`.
    """

    def __init__(self, num_classes: int, ignore_index: int | None = None) -> None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer):
            raise LabelConversionError(f"num_classes must be an integer, got {num_classes!r}")
        if not 1 <= num_classes <= UNLABELED:
            raise LabelConversionError(f"num_classes must lie in 1..{UNLABELED}, got {num_classes}")
        if ignore_index is not None and (
            isinstance(ignore_index, bool) or not isinstance(ignore_index, int | np.integer)
        ):
            raise LabelConversionError(f"ignore_index must be an integer, got {ignore_index!r}")
        self.num_classes = int(num_classes)
        self.ignore_index = None if ignore_index is None else int(ignore_index)
        # Column N collects predictions outside 0..N-1.
        self._counts = np.zeros((self.num_classes, self.num_classes + 1), dtype=np.int64)

    def __repr__(self) -> str:
        return (
            f"ConfusionMatrix(num_classes={self.num_classes}, "
            f"ignore_index={self.ignore_index}, pixels={int(self._counts.sum())})"
        )

    @property
    def matrix(self) -> np.ndarray:
        """Counts ``n_ij``: rows ground truth ``i``, columns prediction ``j`` (int64 N x N copy)."""
        return self._counts[:, : self.num_classes].copy()

    @property
    def invalid_predictions(self) -> np.ndarray:
        """Per ground-truth class, pixels predicted with an id outside 0..N-1 (int64, N)."""
        return self._counts[:, self.num_classes].copy()

    def reset(self) -> None:
        """Forget all counts."""
        self._counts[:] = 0

    def update(self, pred: np.ndarray, target: np.ndarray) -> None:
        """Add the pixels of one prediction and its ground truth.

        Parameters
        ----------
        pred : numpy.ndarray
            Integer array of predicted class ids.
        target : numpy.ndarray
            Integer array of ground-truth ids of the same shape; 255 and
            ``ignore_index`` are skipped.

        Raises
        ------
        LabelConversionError
            If the shapes differ or an array is not of an integer type.
        UnknownIndicesError
            If the ground truth holds ids outside 0..N-1 other than 255 and
            ``ignore_index``.
        """
        pred = np.asarray(pred)
        target = np.asarray(target)
        if pred.shape != target.shape:
            raise LabelConversionError(
                f"prediction shape {pred.shape} differs from ground-truth shape {target.shape}"
            )
        for what, a in (("prediction", pred), ("ground truth", target)):
            if not np.issubdtype(a.dtype, np.integer):
                raise LabelConversionError(
                    f"{what} must be an integer array of class ids, got dtype {a.dtype}"
                )
        n = self.num_classes
        keep = target != UNLABELED
        if self.ignore_index is not None:
            keep &= target != self.ignore_index
        t = target[keep].astype(np.intp, copy=False)
        p = pred[keep].astype(np.intp, copy=False)
        bad_t = (t < 0) | (t >= n)
        if bad_t.any():
            uniq, counts = np.unique(t[bad_t], return_counts=True)
            order = np.lexsort((uniq, -counts))
            pairs = tuple((int(uniq[i]), int(counts[i])) for i in order)
            listed = ", ".join(f"{v} x {c}" for v, c in pairs[:20])
            more = f" and {len(pairs) - 20} more" if len(pairs) > 20 else ""
            raise UnknownIndicesError(
                f"ground truth holds values outside the {n} class ids 0..{n - 1} "
                f"(value x pixels): {listed}{more}; mark unlabeled pixels with {UNLABELED}"
                + ("" if self.ignore_index is None else f" or {self.ignore_index}"),
                pairs,
            )
        p = np.where((p < 0) | (p >= n), n, p)
        flat = np.bincount(t * (n + 1) + p, minlength=n * (n + 1))
        self._counts += flat.reshape(n, n + 1)

    def merge(self, other: ConfusionMatrix) -> None:
        """Add the counts of ``other`` (e.g. from another worker) to this matrix.

        Raises
        ------
        LabelConversionError
            If ``other`` has a different number of classes or ignore index.
        """
        if not isinstance(other, ConfusionMatrix):
            raise LabelConversionError(
                f"can only merge a ConfusionMatrix, got {type(other).__name__}"
            )
        if (other.num_classes, other.ignore_index) != (self.num_classes, self.ignore_index):
            raise LabelConversionError(
                "cannot merge confusion matrices of different set-ups: "
                f"{self.num_classes} classes, ignore_index={self.ignore_index} vs "
                f"{other.num_classes} classes, ignore_index={other.ignore_index}"
            )
        self._counts += other._counts

    def compute(self) -> SegmentationMetrics:
        """Return the scores of everything counted so far (see the module docstring)."""
        n = self.num_classes
        counts = self._counts.astype(np.float64)
        conf = counts[:, :n]
        diag = np.diag(conf)
        gt = counts.sum(axis=1)  # t_i, out-of-range predictions included
        predicted = conf.sum(axis=0)
        union = gt + predicted - diag
        total = float(gt.sum())

        scored = np.ones(n, dtype=bool)
        if self.ignore_index is not None and 0 <= self.ignore_index < n:
            scored[self.ignore_index] = False
        has_gt = scored & (gt > 0)
        has_union = scored & (union > 0)
        acc = np.divide(diag, gt, out=np.zeros(n), where=has_gt)
        iou = np.divide(diag, union, out=np.zeros(n), where=has_union)

        if total > 0:
            pixel_accuracy = float(diag.sum() / total)
            fw_iou = float((gt * iou)[has_gt].sum() / total)
        else:
            pixel_accuracy = fw_iou = 0.0
        mean_accuracy = float(acc[has_gt].mean()) if has_gt.any() else 0.0
        mean_iou = float(iou[has_union].mean()) if has_union.any() else 0.0
        return SegmentationMetrics(
            pixel_accuracy=pixel_accuracy,
            mean_accuracy=mean_accuracy,
            mean_iou=mean_iou,
            fw_iou=fw_iou,
            per_class_iou=tuple(
                float(v) if ok else None for v, ok in zip(iou, has_union, strict=True)
            ),
            per_class_accuracy=tuple(
                float(v) if ok else None for v, ok in zip(acc, has_gt, strict=True)
            ),
            num_pixels=int(self._counts.sum()),
        )
