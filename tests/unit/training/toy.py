"""The toy task the training tests share: grey images with a red disc and a green box.

Small enough (64 x 64, a quarter-width two-stage SegNet) to train in seconds on
a CPU, and hard enough that learning shows.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from segstudio.core.labelset import UNLABELED, LabelClass, LabelSet
from segstudio.model.arch import ArchSpec
from segstudio.training.config import TrainConfig, TrainResult
from segstudio.training.data import Sample, TrainingData
from segstudio.training.events import TrainProgress

SHAPES = LabelSet(
    "shapes",
    (LabelClass("ground", (90, 90, 90)), LabelClass("disc", (220, 40, 40)),
     LabelClass("box", (40, 200, 90))),
)  # fmt: skip
TINY = ArchSpec("segnet_basic", {"width": 0.25, "depth": 2})
SIZE = 64


def shape_image(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A grey textured background with a red disc and a green box (labels 0, 1, 2)."""
    yy, xx = np.mgrid[:SIZE, :SIZE]
    rgb = np.empty((SIZE, SIZE, 3), np.float32)
    rgb[:] = rng.uniform(20, 110)
    labels = np.zeros((SIZE, SIZE), np.uint8)
    y0, x0 = rng.integers(0, SIZE - 24, 2)
    box = np.zeros((SIZE, SIZE), bool)
    box[y0 : y0 + rng.integers(14, 24), x0 : x0 + rng.integers(14, 24)] = True
    cy, cx = rng.integers(14, SIZE - 14, 2)
    disc = (yy - cy) ** 2 + (xx - cx) ** 2 < rng.integers(7, 13) ** 2
    rgb[box] = (40, 190, 90)
    labels[box] = 2
    rgb[disc] = (215, 55, 40)
    labels[disc] = 1
    rgb += rng.normal(0, 12, rgb.shape)
    return np.clip(rgb, 0, 255).astype(np.uint8), labels


def write_dataset(root: Path, n: int = 12, seed: int = 0) -> Path:
    """A dataset folder: images/, labels/ and classes.json."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for i in range(n):
        rgb, labels = shape_image(rng)
        Image.fromarray(rgb).save(root / "images" / f"img{i:02d}.png")
        Image.fromarray(labels).save(root / "labels" / f"img{i:02d}.png")
    SHAPES.save(root / "classes.json")
    return root


def scribbled(data: TrainingData, seed: int) -> TrainingData:
    """The toy data with one 4 x 4 blob of each class labelled per image (~1 %), the rest 255."""
    rng = np.random.default_rng(seed)
    sparse = []
    for s in data.train:
        labels = s.load_labels()
        keep = np.zeros(labels.shape, bool)
        for c in range(SHAPES.num_classes):
            ys, xs = np.nonzero(labels == c)
            if len(ys):
                i = rng.integers(len(ys))
                keep[max(0, ys[i] - 2) : ys[i] + 2, max(0, xs[i] - 2) : xs[i] + 2] = True
        scribbles = np.where(keep, labels, UNLABELED).astype(np.uint8)
        sparse.append(Sample(s.name, s.image_path, labels=scribbles))
    return TrainingData(tuple(sparse), data.val, SHAPES, "scribbles")


def toy_config(**kw: Any) -> TrainConfig:
    """A quick recipe for the toy task: 2 epochs of batches of 3, fp32 on the CPU."""
    base: dict[str, Any] = {
        "epochs": 2,
        "batch_size": 3,
        "crop": SIZE,
        "lr": 1e-2,
        "warmup_steps": 3,
        "precision": "fp32",
        "verdict_pixels": 1000,  # toy images: a verdict on few pixels
        "device": "cpu",
    }
    return TrainConfig(**{**base, **kw})


def drive(
    gen: Generator[TrainProgress, None, TrainResult], stop_after: int | None = None
) -> tuple[list[TrainProgress], TrainResult | None]:
    """Run a fine-tune generator; with ``stop_after``, close it after that many steps."""
    seen: list[TrainProgress] = []
    try:
        while True:
            p = next(gen)
            seen.append(p)
            if stop_after is not None and p.kind == "step" and p.step == stop_after:
                gen.close()
                return seen, None
    except StopIteration as stop:
        return seen, stop.value


def losses(seen: list[TrainProgress]) -> list[float | None]:
    return [p.loss for p in seen if p.kind == "step"]


def weights_of(result: TrainResult) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in result.model.network.state_dict().items()}
