"""Training throughput per architecture at 480 x 360, batch 4, on this machine.

Baseline: a plain PyTorch training step -- float32, eager, NCHW, no autocast,
``F.cross_entropy(ignore_index=255)``, AdamW -- on batches already in memory.
Ours: one step of :func:`segstudio.training.loop.fine_tune` as the app and the
CLI run it (channels-last, bf16 autocast on CPUs with bf16 hardware, fp32
master weights, class- and pixel-weighted loss, gradient clipping, NaN
guard), timed between two of its ``"step"`` yields, so it also pays for
reading the PNGs from disk and augmenting them (the crop covers the whole
frame, so every step sees 480 x 360 pixels per image).

With ``--init MODEL`` (e.g. the bundled model) the row is the fine-tune the
window's one click runs: that model, the few-shot recipe (batch-norm statistics
kept, encoder at a tenth of the learning rate), against the same network trained
by the plain step above, in the same run.

Prints one JSON object naming the CPU: per architecture, the median and min
seconds per step of each, images per second, and the ratio. Emulate an
AVX2-only CPU with ``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2``. Run:
``python benchmarks/bench_train.py [--steps N] [--warmup N] [--arch A ...] [--init MODEL]``
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from machine import machine_info
from PIL import Image
from torch.nn import functional as F

from segstudio.core.labelset import preset
from segstudio.model.arch import ArchSpec, build_model
from segstudio.model.files import IMAGENET_MEAN, IMAGENET_STD, LoadedModel, load_model
from segstudio.model.predictor import cpu_has_native_bf16
from segstudio.training.config import TrainConfig
from segstudio.training.data import Sample, TrainingData
from segstudio.training.loop import fine_tune
from segstudio.training.recipes import FEW_SHOT

CONFIGS = {
    "segnet": ArchSpec("segnet"),
    "segnet_w0.5": ArchSpec("segnet", {"width": 0.5}),
    "segnet_basic": ArchSpec("segnet_basic"),
}
H, W, BATCH = 360, 480, 4


def _frames(folder: Path, n: int, classes: int) -> list[Sample]:
    """Random frames with blocky random labels, written as PNGs like a real dataset."""
    rng = np.random.default_rng(0)
    samples = []
    for i in range(n):
        rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        blocks = rng.integers(0, classes, (H // 40 + 1, W // 40 + 1), dtype=np.uint8)
        labels = np.kron(blocks, np.ones((40, 40), np.uint8))[:H, :W]
        path = folder / f"frame{i}.png"
        Image.fromarray(rgb).save(path)
        samples.append(Sample(path.name, path, labels=np.ascontiguousarray(labels)))
    return samples


def _baseline(
    spec: ArchSpec, classes: int, steps: int, warmup: int, init: LoadedModel | None = None
) -> list[float]:
    torch.manual_seed(0)
    net = (copy.deepcopy(init.network).float() if init else build_model(spec, classes)).train()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    rgb = torch.from_numpy(rng.integers(0, 256, (BATCH, 3, H, W), dtype=np.uint8))
    x = (rgb.float() / 255 - mean) / std
    y = torch.from_numpy(rng.integers(0, classes, (BATCH, H, W))).long()
    times = []
    for i in range(warmup + steps):
        t = time.perf_counter()
        loss = F.cross_entropy(net(x), y, ignore_index=255)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - t)
    return times


def _ours(
    spec: ArchSpec,
    samples: list[Sample],
    steps: int,
    warmup: int,
    init: LoadedModel | None = None,
) -> list[float]:
    labelset = preset("camvid11")
    data = TrainingData(tuple(samples), (), labelset, "bench")
    # a crop of the frame's long side keeps whole 480 x 360 frames (crop = min(crop, size))
    recipe = {**FEW_SHOT, "patience": 0} if init else {}
    config = TrainConfig.from_dict(
        {**recipe, "epochs": 1000, "batch_size": BATCH, "crop": W, "device": "cpu"}
    )
    if init:
        gen = fine_tune(data, init=init, config=config)
    else:
        gen = fine_tune(data, arch=spec, config=config)
    times = []
    last = None
    try:
        for p in gen:
            if p.kind != "step":
                continue
            now = time.perf_counter()
            if last is not None and p.step > warmup:
                times.append(now - last)
            last = now
            if len(times) >= steps:
                break
    finally:
        gen.close()
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--arch", nargs="*", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--init", help="a model file: time the one-click fine-tune from it instead")
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    init = load_model(Path(args.init)) if args.init else None
    classes = preset("camvid11").num_classes
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        samples = _frames(Path(tmp), 8, classes)
        names = [f"fine-tune from {Path(args.init).name}"] if init else args.arch
        for name in names:
            spec = init.info.arch if init else CONFIGS[name]
            base = _baseline(spec, classes, args.steps, args.warmup, init)
            ours = _ours(spec, samples, args.steps, args.warmup, init)
            med_b, med_o = statistics.median(base), statistics.median(ours)
            results[name] = {
                "baseline_fp32_eager_step_s": {
                    "median": round(med_b, 3),
                    "min": round(min(base), 3),
                },
                "fine_tune_step_s": {"median": round(med_o, 3), "min": round(min(ours), 3)},
                "baseline_images_per_s": round(BATCH / med_b, 2),
                "fine_tune_images_per_s": round(BATCH / med_o, 2),
                "speedup_median": round(med_b / med_o, 2),
            }
    print(
        json.dumps(
            {
                "benchmark": "train",
                "image": [W, H],
                "batch": BATCH,
                "steps": args.steps,
                "warmup": args.warmup,
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "cpu_native_bf16": cpu_has_native_bf16(),
                "machine": machine_info(),
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
