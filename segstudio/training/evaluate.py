"""Scoring a model on labelled images: the one evaluator of validation, scripts and the CLI.

:func:`score` reads each sample, checks its labels, predicts it and adds both
to a :class:`~segstudio.core.metrics.ConfusionMatrix`; it yields after every
image (so the training loop can report progress and be cancelled) and returns
the metrics. What predicts is a parameter, any ``HxWx3 uint8 -> HxW uint8``
callable:

- :class:`NetworkPredict`: a network in place, full images, eval mode, the
  training loop's precision (images over 1024 pixels in tiles). The loop's
  validation uses it, and so does :func:`evaluate` by default, so the
  ``before``/``after`` of a run and a later :func:`evaluate` agree.
- a :class:`~segstudio.model.predictor.Predictor` (``evaluate(...,
  predictor=...)``): scores what the app and ``segstudio predict`` produce,
  with their device, precision and tile size.

Metrics are ``SegmentationMetrics.to_dict()`` plus ``images`` and
``class_names``. :func:`verdict` turns a run's before and after into the
sentence a person reads.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Generator, Iterable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from segstudio.core.jobs import drive
from segstudio.core.labelset import LabelSet
from segstudio.core.metrics import ConfusionMatrix
from segstudio.model.files import LoadedModel, ModelInfo
from segstudio.model.predictor import Predictor
from segstudio.training import ddp
from segstudio.training.config import Precision
from segstudio.training.data import Sample, check_labels
from segstudio.training.precision import (
    amp_name,
    autocast,
    memory_format,
    resolve_amp,
    training_device,
)

__all__ = ["NetworkPredict", "Predict", "evaluate", "metrics_dict", "score", "verdict"]

#: Images whose longer side is above this are predicted in tiles (by the Predictor).
FULL_IMAGE_MAX = 1024

#: Predicts one image: ``HxWx3`` uint8 RGB -> ``HxW`` uint8 class ids.
Predict = Callable[[np.ndarray], np.ndarray]


class NetworkPredict:
    """Full-image predictions of a network in place (no copy for small images).

    The network must be in eval mode when called; it is used as it is at that
    moment (the training loop validates the weights it is training). Make one
    per evaluation: a large image's tiler copies the weights once.
    """

    def __init__(
        self,
        network: nn.Module,
        info: ModelInfo,
        device: torch.device,
        amp: torch.dtype | None,
    ) -> None:
        self.network = network
        self.info = info
        self.device = device
        self.amp = amp
        norm = info.normalization
        mean = torch.tensor(norm.mean, dtype=torch.float32, device=device)
        std = torch.tensor(norm.std, dtype=torch.float32, device=device)
        self.scale = (1.0 / (255.0 * std)).view(1, -1, 1, 1)
        self.shift = (-mean / std).view(1, -1, 1, 1)
        self._tiler: Predictor | None = None

    def inputs(self, rgb: np.ndarray) -> torch.Tensor:
        """``(B, 3, H, W)`` normalised float32 from ``(B, H, W, 3)`` uint8, in the layout
        training uses (:func:`~segstudio.training.precision.memory_format`)."""
        x = torch.from_numpy(np.ascontiguousarray(rgb)).to(self.device, non_blocking=True)
        x = x.permute(0, 3, 1, 2).float() * self.scale + self.shift
        return x.contiguous(memory_format=memory_format(self.device, self.amp))

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """The class map of one image."""
        if max(rgb.shape[:2]) > FULL_IMAGE_MAX:
            if self._tiler is None:
                model = LoadedModel(self.info, self.network)
                precision = amp_name(self.amp)
                self._tiler = Predictor(model, device=str(self.device), precision=precision)
            return self._tiler.predict(rgb).labels
        with torch.inference_mode(), autocast(self.device, self.amp):
            logits = self.network(self.inputs(rgb[None]))
        return logits.argmax(dim=1)[0].to(torch.uint8).cpu().numpy()


def metrics_dict(cm: ConfusionMatrix, labelset: LabelSet, images: int) -> dict[str, Any]:
    """``cm``'s metrics as JSON-safe values, with the image count and class names."""
    out = cm.compute().to_dict()
    out["images"] = images
    out["class_names"] = list(labelset.names)
    return out


def score(
    predict: Predict, samples: Iterable[Sample], labelset: LabelSet
) -> Generator[int, None, dict[str, Any]]:
    """Score the predictions of ``predict`` on labelled samples.

    Yields the number of images done after each image; returns (as
    ``StopIteration.value``) the metrics: ``SegmentationMetrics.to_dict()``
    plus ``images`` and ``class_names``. Unlabeled pixels (255, and a
    sample's void value) are not counted.

    Raises
    ------
    TrainingError
        A label map holds values that are no class id, or differs in size from
        its image.
    ImageReadError
        An image or label file cannot be read.
    """
    n = labelset.num_classes
    cm = ConfusionMatrix(n)
    done = 0
    for sample in samples:
        rgb, labels, _ = sample.load()
        check_labels(sample, labels, n)
        cm.update(predict(rgb), labels)
        done += 1
        yield done
    return metrics_dict(cm, labelset, done)


def _labels_of(predictor: Predictor) -> Predict:
    return lambda rgb: predictor.predict(rgb).labels


def evaluate(
    model: LoadedModel,
    samples: Iterable[Sample],
    *,
    device: str = "auto",
    predictor: Predictor | None = None,
    on_image: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Score a model on labelled samples (full images, eval mode).

    By default it uses the same forward pass and precision as the validation
    inside :func:`~segstudio.training.loop.fine_tune` (bf16 autocast where the
    hardware has it), so ``before`` and ``after`` of a run and this function agree.

    Parameters
    ----------
    model : LoadedModel
        The model to score; its network is copied, never changed.
    samples : iterable of Sample
        Images and their label maps (a sample's ``void`` value is not counted).
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"`` (without
        ``predictor``).
    predictor : Predictor, optional
        Predict with this instead (its device, precision and tiles: what the
        app and ``segstudio predict`` produce). It must hold ``model``.
    on_image : callable, optional
        Called with the number of images done after each image (a progress bar).

    Returns
    -------
    dict
        ``SegmentationMetrics.to_dict()`` plus ``images`` and ``class_names``.

    Raises
    ------
    TrainingError
        Bad label maps (see :func:`score`), or an unavailable device.
    """
    if predictor is None:
        dev = training_device(device, ddp.SINGLE)
        amp, _ = resolve_amp(dev, Precision.AUTO)
        network = copy.deepcopy(model.network).to(dev).to(memory_format=memory_format(dev, amp))
        predict: Predict = NetworkPredict(network.eval(), model.info, dev, amp)
    else:
        predict = _labels_of(predictor)
    metrics = drive(score(predict, samples, model.info.labelset), on_image)
    assert metrics is not None  # not cancelled: nothing here cancels
    return metrics


def verdict(
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    min_pixels: int,
    *,
    kept_start: bool,
    than: str = "",
) -> tuple[bool | None, str]:
    """Whether the new model is better, and the sentence that says so (and on what).

    ``before`` and ``after`` are the metrics of the starting and the returned
    model; fewer than two images or ``min_pixels`` labelled pixels give no
    verdict (None). ``kept_start``: the run returned the starting weights.
    ``than`` names what ``before`` scored, when it is not the starting model
    (" than the live learner in use": "better than the live learner in use on …").
    """
    if after is None:
        return None, "no validation images: mark some (or hold some out) to measure a run"
    images, pixels = after.get("images", 0), after.get("num_pixels", 0)
    on = f"on {images} validation image(s), {pixels:,} labelled pixels"
    if before is None:
        return None, f"new head or new model: mIoU {after['mean_iou']:.3f} {on}"
    if images < 2 or pixels < min_pixels:
        return None, (
            f"mIoU {before['mean_iou']:.3f} -> {after['mean_iou']:.3f} {on}: too few to "
            "judge; label and hold out more images for a verdict"
        )
    if kept_start:
        return False, (
            f"NOT better {on} (mIoU {before['mean_iou']:.3f}): no epoch beat the starting "
            "model, so the new version has its weights"
        )
    better = after["mean_iou"] > before["mean_iou"]
    return better, (
        f"{'better' if better else 'NOT better'}{than} {on}: mIoU "
        f"{before['mean_iou']:.3f} -> {after['mean_iou']:.3f}"
    )
