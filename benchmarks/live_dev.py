"""Recipe search for the live learner on a dev split (not the hold-out figure).

Trains the live learner on the first ``--train`` photos of a dataset and
scores it on the next ``--dev`` photos, once per ``--variant``, so that a
recipe is chosen on photos that the reported hold-out figure
(``bench_loop.py``, the 290 photos after the first 10) does not depend on
alone. Each variant is ``NAME=JSON``: :class:`~segstudio.training.live.LiveConfig`
fields, plus

- ``"scale"``: the photos (training and dev) are resized by this factor
  before the learner sees them, and the prediction is resized back;
- ``"flip"``: every training photo is added a second time, mirrored;
- ``"prior"``: ``alpha``: the head's probabilities times the class frequency
  at each place of the image (over the training photos, on a 64 x 64 grid of
  relative positions) to the power ``alpha``;
- ``"grabcut"``: ``[lo, hi, iterations]``: the prediction seeds OpenCV's
  GrabCut (probability above ``hi`` sure horse, below ``lo`` sure
  background, the rest probable by the argmax), a per-photo colour model.

- ``"adabn"``: ``N``: the base network's batch-norm statistics are first
  re-estimated on the training photos and the first ``N`` photos after the dev
  ones (unlabelled), as a domain adaptation (AdaBN; measured on horses: 0.368
  against 0.369 horse IoU on the 290 others, no gain).

``--deep-steps N`` instead fine-tunes the whole bundled SegNet (a new
two-class classifier, batch norms frozen, encoder at 0.1 x the learning
rate, random crops with the training augmentation) on the training photos
and scores the network alone every 100 steps.

``python benchmarks/live_dev.py --variant 'base={}' --variant 'flip={"flip": true}'``
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_loop import load_sequence, read_pair
from machine import machine_info

from segstudio.core.bundled import bundled_model_path
from segstudio.core.metrics import ConfusionMatrix


def _resize(rgb: np.ndarray, gt: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    if scale == 1:
        return rgb, gt
    h, w = gt.shape
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(rgb, size, interpolation=interp), cv2.resize(
        gt, size, interpolation=cv2.INTER_NEAREST
    )


def grabcut(rgb: np.ndarray, p: np.ndarray, lo: float, hi: float, iters: int) -> np.ndarray:
    """Foreground (uint8 0/1) of GrabCut seeded by the probability map ``p``."""
    mask = np.where(p > 0.5, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    mask[p > hi] = cv2.GC_FGD
    mask[p < lo] = cv2.GC_BGD
    fg = np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD)).sum()
    if fg < 10 or mask.size - fg < 10:  # GrabCut needs both models
        return (p > 0.5).astype(np.uint8)
    bgd, fgd = np.zeros((1, 65)), np.zeros((1, 65))
    cv2.grabCut(
        cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), mask, None, bgd, fgd, iters, cv2.GC_INIT_WITH_MASK
    )
    return np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8)


def _place_prior(labels: list[np.ndarray], num_classes: int, side: int = 64) -> np.ndarray:
    """``side x side x C``: how often each class is at each relative place (smoothed)."""
    counts = np.ones((side, side, num_classes), np.float32)  # one of each: never zero
    for g in labels:
        small = cv2.resize(g, (side, side), interpolation=cv2.INTER_NEAREST)
        for c in range(num_classes):
            counts[..., c] += small == c
    counts = cv2.GaussianBlur(counts, (0, 0), 3)
    return counts / counts.sum(-1, keepdims=True)


def _scores(cm: ConfusionMatrix) -> dict:
    m = cm.compute().to_dict()
    return {
        "class_iou": [round(v, 4) for v in m["per_class_iou"]],
        "mean_iou": round(m["mean_iou"], 4),
    }


def adapt_batchnorm(base, photos: list[np.ndarray]):
    """A copy of ``base`` whose batch-norm statistics are those of ``photos``."""
    import dataclasses

    import torch

    net = copy.deepcopy(base.network)
    for mod in net.modules():
        if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
            mod.reset_running_stats()
            mod.momentum = None  # a plain average over every photo
    mean = torch.tensor(base.info.normalization.mean).view(1, 3, 1, 1)
    std = torch.tensor(base.info.normalization.std).view(1, 3, 1, 1)
    net.train()
    with torch.no_grad():
        for rgb in photos:
            x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255
            net((x - mean) / std)
    net.eval()
    return dataclasses.replace(base, network=net)


def live_variant(base, labelset, train, dev, spec: dict, unlabelled=()) -> dict:
    from segstudio.training.live import LiveConfig, LiveLearner

    spec = dict(spec)
    adabn = int(spec.pop("adabn", 0))
    if adabn:
        t0 = time.perf_counter()
        base = adapt_batchnorm(base, [r for r, _ in train] + [r for r, _ in unlabelled][:adabn])
        print(f"adabn {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    scale = float(spec.pop("scale", 1.0))
    flip = bool(spec.pop("flip", False))
    cut = spec.pop("grabcut", None)
    alpha = float(spec.pop("prior", 0.0))
    place = _place_prior([g for _, g in train], labelset.num_classes) if alpha else None
    if "colour_strides" in spec:
        spec["colour_strides"] = tuple(spec["colour_strides"])
    learner = LiveLearner(base, labelset, LiveConfig(**spec))
    for k, (rgb, gt) in enumerate(train):
        r, g = _resize(rgb, gt, scale)
        learner.add_image(str(k), r, g)
        if flip:
            learner.add_image(f"{k}-mirrored", r[:, ::-1].copy(), g[:, ::-1].copy())
    fit = learner.fit()
    cm = ConfusionMatrix(labelset.num_classes)
    times = []
    for rgb, gt in dev:
        h, w = gt.shape
        t0 = time.perf_counter()
        pred = learner.predict(_resize(rgb, gt, scale)[0])
        times.append(time.perf_counter() - t0)
        labels = pred.labels
        if place is not None:  # two classes: the probability of class 1
            conf = pred.confidence.astype(np.float32)
            p1 = np.clip(np.where(pred.labels == 1, conf, 1 - conf), 1e-4, 1 - 1e-4)
            q = cv2.resize(place, (labels.shape[1], labels.shape[0]))
            logit = np.log(p1 / (1 - p1)) + alpha * np.log(q[..., 1] / q[..., 0])
            labels = (logit > 0).astype(np.uint8)
        if scale != 1:
            labels = cv2.resize(labels, (w, h), interpolation=cv2.INTER_NEAREST)
        if cut is not None:  # two classes: the probability of class 1
            conf = pred.confidence.astype(np.float32)
            p1 = np.where(pred.labels == 1, conf, 1 - conf)
            if scale != 1:
                p1 = cv2.resize(p1, (w, h))
            labels = grabcut(rgb, p1, float(cut[0]), float(cut[1]), int(cut[2]))
        cm.update(labels, gt)
    return {
        "fit_s": round(fit.seconds, 2),
        "predict_s_median": round(statistics.median(times), 3),
        **_scores(cm),
    }


def deep_probe(base, train, dev, steps: int, crop: int = 224, batch: int = 4) -> list[dict]:
    import torch
    from torch.nn import functional as F

    from segstudio.model.predictor import fold_batchnorm
    from segstudio.training.augment import AugmentConfig, augment

    net = copy.deepcopy(base.network)
    old = net.classifier
    net.classifier = torch.nn.Conv2d(old.in_channels, 2, old.kernel_size, padding=old.padding)
    mean = torch.tensor(base.info.normalization.mean).view(1, 3, 1, 1)
    std = torch.tensor(base.info.normalization.std).view(1, 3, 1, 1)
    enc = list(net.encoder.parameters())
    rest = [p for n, p in net.named_parameters() if not n.startswith("encoder")]
    opt = torch.optim.AdamW([{"params": enc, "lr": 1e-4}, {"params": rest, "lr": 1e-3}])
    rng = np.random.default_rng(0)
    aug = AugmentConfig(scale=(0.6, 1.4))
    counts = np.bincount(np.concatenate([g[g < 2] for _, g in train]), minlength=2)
    weight = torch.tensor(counts.sum() / counts / 2, dtype=torch.float32)
    out, spent = [], 0.0
    for step in range(1, steps + 1):
        t0 = time.perf_counter()
        net.train()
        for mod in net.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.eval()
        xs, ys = [], []
        for _ in range(batch):
            rgb, gt = train[rng.integers(len(train))]
            r, lab, _ = augment(rgb, gt, None, rng, crop, aug)
            xs.append(torch.from_numpy(r).permute(2, 0, 1).float() / 255)
            ys.append(torch.from_numpy(lab.astype(np.int64)))
        loss = F.cross_entropy(
            net((torch.stack(xs) - mean) / std), torch.stack(ys), weight=weight, ignore_index=255
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        spent += time.perf_counter() - t0
        if step % 100 and step != steps:
            continue
        frozen = fold_batchnorm(copy.deepcopy(net).eval()).eval()
        cm = ConfusionMatrix(2)
        with torch.inference_mode():
            for rgb, gt in dev:
                x = (torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255 - mean) / std
                cm.update(frozen(x).argmax(1)[0].numpy().astype(np.uint8), gt)
        out.append(
            {"step": step, "train_s": round(spent, 1), "loss": round(loss.item(), 3), **_scores(cm)}
        )
        print(json.dumps(out[-1]), file=sys.stderr, flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    import torch

    from segstudio.model.files import load_model

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="horse")
    p.add_argument("--train", type=int, default=10, help="training photos (the first N)")
    p.add_argument("--dev", type=int, default=50, help="dev photos (the N after them)")
    p.add_argument("--variant", action="append", default=[], help="NAME=JSON (repeatable)")
    p.add_argument("--deep-steps", type=int, default=0, help="fine-tune probe instead")
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    labelset, pairs, void = load_sequence(args.dataset, None)
    train = [read_pair(i, lab, void) for _, i, lab in pairs[: args.train]]
    dev = [read_pair(i, lab, void) for _, i, lab in pairs[args.train : args.train + args.dev]]
    rest = [read_pair(i, lab, void) for _, i, lab in pairs[args.train + args.dev :][:100]]
    path = bundled_model_path()
    if path is None:
        raise SystemExit("needs the bundled model (resources/)")
    base = load_model(path)
    out: dict = {
        "benchmark": "live_dev",
        "dataset": args.dataset,
        "train": args.train,
        "dev": len(dev),
        "machine": machine_info(),
        "variants": {},
    }
    if args.deep_steps:
        out["deep"] = deep_probe(base, train, dev, args.deep_steps)
    for item in args.variant or ["base={}"]:
        name, _, spec = item.partition("=")
        out["variants"][name] = live_variant(
            base, labelset, train, dev, json.loads(spec or "{}"), rest
        )
        print(name, json.dumps(out["variants"][name]), file=sys.stderr, flush=True)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
