"""The simulated annotator: how much work the model loop saves a labeller.

It walks a folder of images with ground truth in a fixed order, as a person
would. Before each image the current model predicts it; the simulated user
corrects every wrong pixel; the image becomes a reviewed label; the learner
updates. Per image it records the effort:

- ``effort``: the share of the labelled pixels the user had to change
  (1.0 = painting the whole image by hand);
- ``strokes``: connected regions of wrong pixels of one true class with at
  least ``--min-stroke`` pixels (each needs a stroke or a fill; smaller
  specks are counted as pixels only), against the regions a hand labeller
  would paint.

It reports the cumulative effort against labelling by hand and against the
starting model without learning, the wall time of every update, and a
hold-out score: after ``--holdout-after`` images, each learner predicts every
image it has not seen (the other 290 horses; the rest of the drive).

Learners, all fed the same labelled pixels:

- ``static``: the starting model, never updated (the bundled model for
  CamVid classes; none for new classes, i.e. labelling by hand);
- ``live``: SegStudio's live learner (:mod:`segstudio.training.live`),
  refitted after every image on the bundled SegNet's features; as in the
  window, when the bundled model knows every class (CamVid) it also replays
  its own sure answers on up to 10 images spread over the loop (images only,
  never their labels; a variant ``{"replay": false}`` turns that off);
- ``forest``: the ilastik-style baseline (:mod:`ilastik_baseline`), a random
  forest on multiscale filter features, refitted after every image;
- ``--variant NAME=JSON``: one more live learner, with these
  :class:`~segstudio.training.live.LiveConfig` fields (``NAME={"hidden": 128}``),
  to compare recipes in one run;
- ``finetune``: the deep fine-tune on demand, every ``--finetune-every``
  images, run as the window's one click runs it
  (:func:`segstudio.session.training.one_click`: the few-shot recipe with
  replay of the start model's sure answers on up to 10 of the images not
  labelled yet, and a live head; ``--finetune-minutes``), taken when its
  verdict is "better";
- ``live+finetune``: the window with "Learn as I paint" on and a click of
  Fine-tune every ``--finetune-every`` images: the live learner after every
  image; each click starts from the live model in use and is judged against
  that live learner refitted on the same training images; a "better" model
  is used, and the live learner goes on from it.

Datasets: ``horse`` (../shared/data/weizmann_horse, a new domain: its
classes are unknown to every shipped model) and ``camvid`` (CamVid val as the
sequence it is: 101 consecutive frames of one drive, from the bundled model).

Figures must hold on CPUs without AVX-512 or AMX; to measure as such a CPU
on one that has them, run with ``ONEDNN_MAX_CPU_ISA=AVX2
ATEN_CPU_CAPABILITY=avx2`` (the JSON records the ISA torch used). Prints one
JSON object:

``python benchmarks/bench_loop.py --dataset horse --images 50 --out horse.json``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ilastik_baseline import ForestLearner
from machine import machine_info

from segstudio.core.bundled import bundled_model_path
from segstudio.core.jobs import drive
from segstudio.core.labelset import UNLABELED, LabelSet, read_classes_file
from segstudio.io.images import list_images, read_image, read_label_map

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DATASETS = {
    "horse": ("weizmann_horse", "images", "labels"),
    "camvid": ("camvid", "val", "valannot"),
}


def load_sequence(
    name: str, root: Path | None
) -> tuple[LabelSet, list[tuple[str, Path, Path]], int | None]:
    folder, images, labels = DATASETS[name]
    root = root or SHARED / folder
    labelset, void = read_classes_file(root / "classes.json")
    pairs = []
    for path in list_images(root / images):  # natural order: the drive's frame order
        lab = root / labels / (path.stem + ".png")
        if lab.is_file():
            pairs.append((path.stem, path, lab))
    if not pairs:
        raise SystemExit(f"no image/label pairs under {root}")
    return labelset, pairs, void


def read_pair(img: Path, lab: Path, void: int | None) -> tuple[np.ndarray, np.ndarray]:
    rgb = read_image(img).rgb
    gt = read_label_map(lab)
    if void is not None:
        gt = np.where(gt == void, UNLABELED, gt).astype(np.uint8)
    return rgb, gt


def effort(pred: np.ndarray | None, gt: np.ndarray, num_classes: int, min_stroke: int) -> dict:
    """Pixels and strokes the simulated user spends to turn ``pred`` into ``gt``."""
    import cv2

    labelled = gt < num_classes
    wrong = labelled if pred is None else labelled & (pred != gt)
    strokes = hand = 0
    for c in np.unique(gt[labelled]):
        for mask, counter in ((wrong & (gt == c), "s"), (gt == c, "h")):
            _, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
            k = int((stats[1:, cv2.CC_STAT_AREA] >= min_stroke).sum())
            if counter == "s":
                strokes += k
            else:
                hand += k
    return {
        "labelled": int(labelled.sum()),
        "wrong": int(wrong.sum()),
        "strokes": strokes,
        "hand_strokes": hand,
    }


class Learner:
    """What the simulated annotator asks of a learner."""

    name = ""

    def predict(self, rgb: np.ndarray) -> np.ndarray | None:
        raise NotImplementedError

    def learn(self, name: str, rgb: np.ndarray, gt: np.ndarray) -> None:
        raise NotImplementedError


class Static(Learner):
    name = "static"

    def __init__(self, labelset: LabelSet) -> None:
        from segstudio.model.files import load_model
        from segstudio.model.predictor import Predictor

        self.predictor = None
        path = bundled_model_path()
        if path is not None:
            model = load_model(path)
            if model.info.labelset.same_names(labelset):
                self.predictor = Predictor(model)

    def predict(self, rgb: np.ndarray) -> np.ndarray | None:
        return None if self.predictor is None else self.predictor.predict(rgb).labels

    def learn(self, name: str, rgb: np.ndarray, gt: np.ndarray) -> None:
        return None


class Live(Learner):
    """The live learner as the window runs it: it replays the bundled model's sure
    answers on up to 10 images of the loop spread over it (the window's unlabelled
    images when it starts) unless the variant says ``"replay": false``; an image
    labelled later replaces its replay."""

    name = "live"

    def __init__(
        self, labelset: LabelSet, config: dict | None = None, loop: list | None = None
    ) -> None:
        from segstudio.model.files import load_model
        from segstudio.training.live import LiveConfig, LiveLearner
        from segstudio.training.live_quick import spread

        path = bundled_model_path()
        if path is None:
            raise SystemExit("the live learner needs the bundled model (resources/)")
        fields = dict(config or {})
        replay = fields.pop("replay", True)
        if "colour_strides" in fields:
            fields["colour_strides"] = tuple(fields["colour_strides"])
        self.learner = LiveLearner(load_model(path), labelset, LiveConfig(**fields))
        t0 = time.perf_counter()
        if replay and self.learner.replays:
            for name, img, _ in spread(loop or []):
                self.learner.add_replay(name, read_image(img).rgb)
        self.replay_s = round(time.perf_counter() - t0, 2)
        self.replayed = list(self.learner.replayed)

    def predict(self, rgb: np.ndarray) -> np.ndarray | None:
        return self.learner.predict(rgb).labels if self.learner.ready else None

    def learn(self, name: str, rgb: np.ndarray, gt: np.ndarray) -> None:
        self.learner.add_image(name, rgb, gt)
        self.learner.fit()


class Forest(Learner):
    name = "forest"

    def __init__(self, labelset: LabelSet) -> None:
        self.forest = ForestLearner(labelset.num_classes)

    def predict(self, rgb: np.ndarray) -> np.ndarray | None:
        return self.forest.predict(rgb)

    def learn(self, name: str, rgb: np.ndarray, gt: np.ndarray) -> None:
        self.forest.add(name, rgb, gt)
        self.forest.fit()


class FineTune(Learner):
    """The deep fine-tune on demand: every ``every`` images, one click of Fine-tune.

    It trains the model in use (the bundled model, or its encoder with a new
    head for other classes) on every image labelled so far with the window's
    recipe (few-shot, the time budget of ``--finetune-minutes``, 30 % held
    out); the simulated user takes the new model when the run says it is
    better on validation, as a person reading the verdict would, and keeps
    the old one otherwise.
    """

    name = "finetune"

    def __init__(
        self, labelset: LabelSet, every: int = 10, minutes: float = 2.0, loop: list | None = None
    ) -> None:
        from segstudio.model.files import load_model
        from segstudio.model.predictor import Predictor

        self.labelset, self.every, self.minutes = labelset, every, minutes
        self.loop_paths = [img for _, img, _ in loop or []]
        path = bundled_model_path()
        if path is None:
            raise SystemExit("the fine-tune learner starts from the bundled model (resources/)")
        self.model = load_model(path)
        fits = self.model.info.labelset.same_names(labelset)
        self.predictor = Predictor(self.model) if fits else None
        self.samples: list = []
        self.verdicts: list[str] = []

    def predict(self, rgb: np.ndarray) -> np.ndarray | None:
        return None if self.predictor is None else self.predictor.predict(rgb).labels

    def click(self, init) -> Any:
        """One click of Fine-tune from ``init`` on every image labelled so far."""
        from segstudio.session.training import one_click
        from segstudio.training.config import TrainConfig
        from segstudio.training.data import TrainingData, hash_split
        from segstudio.training.live_quick import spread
        from segstudio.training.recipes import FEW_SHOT

        val_names = hash_split([s.name for s in self.samples], 0.3)
        train = tuple(s for s in self.samples if s.name not in val_names)
        val = tuple(s for s in self.samples if s.name in val_names)
        labelled = {s.image_path for s in self.samples}
        unlabelled = tuple(spread([p for p in self.loop_paths if p not in labelled]))
        data = TrainingData(train, val, self.labelset, "bench_loop", unlabelled=unlabelled)
        config = TrainConfig(**{**FEW_SHOT, "minutes": self.minutes})
        # a live model as the window hands it over: one_click trains its SegNet
        result = drive(one_click(data, init, config))
        self.verdicts.append(f"after {len(self.samples)}: {result.verdict}")
        print(f"[{self.name}] {self.verdicts[-1]}", file=sys.stderr, flush=True)
        return result

    def learn(self, name: str, rgb: np.ndarray, gt: np.ndarray, path: Path | None = None) -> None:
        from segstudio.training.data import Sample

        assert path is not None
        self.samples.append(Sample(name, path, labels=gt))
        if len(self.samples) % self.every:
            return
        result = self.click(self.model)
        if result.improved or self.predictor is None:  # better, or nothing to keep
            self.model = result.model
            from segstudio.model.predictor import Predictor

            self.predictor = Predictor(result.model)


class LiveAndFineTune(FineTune):
    """The window with "Learn as I paint" on and a click of Fine-tune every ``every``
    images: the live learner updates after each image; each click starts from the
    live model in use (its SegNet trains deep, and the verdict is against that
    live learner refitted on the same training images); when it says better, the
    simulated user clicks Use, and the live learner goes on from the new model
    with every image labelled so far, as the window's does from the active model."""

    name = "live+finetune"

    def __init__(
        self, labelset: LabelSet, every: int = 10, minutes: float = 2.0, loop: list | None = None
    ) -> None:
        super().__init__(labelset, every, minutes, loop)
        self.live = Live(labelset, None, loop)
        self.replay_s, self.replayed = self.live.replay_s, self.live.replayed
        self.loop = loop or []
        self.pixels: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def predict(self, rgb: np.ndarray) -> np.ndarray | None:
        return self.live.predict(rgb)

    def learn(self, name: str, rgb: np.ndarray, gt: np.ndarray, path: Path | None = None) -> None:
        from segstudio.training.data import Sample
        from segstudio.training.live import LiveLearner
        from segstudio.training.live_quick import spread

        assert path is not None
        self.live.learn(name, rgb, gt)
        self.pixels[name] = (rgb, gt)
        self.samples.append(Sample(name, path, labels=gt))
        if len(self.samples) % self.every:
            return
        result = self.click(self.live.learner.model())
        if not result.improved:
            return
        learner = LiveLearner(result.model, self.labelset)  # a live model goes on learning
        if learner.replays:
            for key, img, _ in spread([p for p in self.loop if p[0] not in self.pixels]):
                learner.add_replay(key, read_image(img).rgb)
        for key, (image, labels) in self.pixels.items():
            learner.add_image(key, image, labels)
        learner.fit()
        self.live.learner = learner


LEARNERS: dict[str, Callable[[LabelSet], Learner]] = {
    "static": Static,
    "live": Live,
    "forest": Forest,
    "finetune": FineTune,
    "live+finetune": LiveAndFineTune,
}


def holdout_scores(learner: Learner, pairs, void, num_classes: int) -> dict:
    from segstudio.core.metrics import ConfusionMatrix

    cm = ConfusionMatrix(num_classes)
    times, pixels = [], []
    for _, img, lab in pairs:
        rgb, gt = read_pair(img, lab, void)
        t0 = time.perf_counter()
        pred = learner.predict(rgb)
        times.append(time.perf_counter() - t0)
        pixels.append(rgb.shape[0] * rgb.shape[1])
        cm.update(np.zeros_like(gt) if pred is None else pred, gt)
    m = cm.compute().to_dict()
    return {
        "images": len(pairs),
        "mean_iou": m["mean_iou"],
        "per_class_iou": m["per_class_iou"],
        "pixel_accuracy": m["pixel_accuracy"],
        "predict_s_median": statistics.median(times) if times else None,
        "megapixels_median": statistics.median(pixels) / 1e6 if pixels else None,
    }


def latency(learner: Learner, rgb: np.ndarray, repeat: int = 11) -> float | None:
    """Median seconds of one prediction of ``rgb`` (after one warm-up call)."""
    if learner.predict(rgb) is None:
        return None
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        learner.predict(rgb)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def cumulative(records: list[dict], n: int) -> dict:
    part = records[:n]
    wrong = sum(r["wrong"] for r in part)
    labelled = sum(r["labelled"] for r in part)
    strokes = sum(r["strokes"] for r in part)
    hand = sum(r["hand_strokes"] for r in part)
    return {
        "images": len(part),
        "pixel_effort_vs_hand": wrong / labelled if labelled else None,
        "strokes": strokes,
        "stroke_effort_vs_hand": strokes / hand if hand else None,
    }


def run(args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    labelset, pairs, void = load_sequence(args.dataset, args.data)
    loop = pairs[: args.images] if args.images else pairs
    out: dict = {
        "benchmark": "bench_loop",
        "dataset": args.dataset,
        "classes": list(labelset.names),
        "images_in_loop": len(loop),
        "images_in_dataset": len(pairs),
        "min_stroke_px": args.min_stroke,
        "machine": machine_info(),
        "learners": {},
    }
    variants = dict(v.partition("=")[::2] for v in args.variant)
    for key in args.learners + list(variants):
        if key in variants:
            learner: Learner = Live(labelset, json.loads(variants[key] or "{}"), loop)
        elif key == "live":
            learner = Live(labelset, None, loop)
        elif key in ("finetune", "live+finetune"):
            learner = LEARNERS[key](labelset, args.finetune_every, args.finetune_minutes, loop)
        else:
            learner = LEARNERS[key](labelset)
        records: list[dict] = []
        updates: list[float] = []
        holdout = None
        t_start = time.perf_counter()
        for i, (name, img, lab) in enumerate(loop, 1):
            rgb, gt = read_pair(img, lab, void)
            pred = learner.predict(rgb)
            rec = effort(pred, gt, labelset.num_classes, args.min_stroke)
            rec["name"] = name
            t0 = time.perf_counter()
            if isinstance(learner, FineTune):
                learner.learn(name, rgb, gt, path=img)
            else:
                learner.learn(name, rgb, gt)
            rec["update_s"] = round(time.perf_counter() - t0, 3)
            if key != "static":
                updates.append(rec["update_s"])
            records.append(rec)
            print(
                f"[{key}] {i}/{len(loop)} {name}: "
                f"effort {rec['wrong'] / max(1, rec['labelled']):.3f} "
                f"strokes {rec['strokes']} update {rec['update_s']:.2f}s",
                file=sys.stderr,
                flush=True,
            )
            if i == args.holdout_after and args.holdout_after and key != "static":
                rest = pairs[i:]
                if args.holdout_max:
                    rest = rest[: args.holdout_max]
                holdout = holdout_scores(learner, rest, void, labelset.num_classes)
                print(f"[{key}] hold-out after {i}: {holdout['per_class_iou']}", file=sys.stderr)
        if key == "static" and args.holdout_after:
            rest = pairs[args.holdout_after :]
            if args.holdout_max:
                rest = rest[: args.holdout_max]
            holdout = holdout_scores(learner, rest, void, labelset.num_classes)
        marks = sorted({n for n in (10, 25, 50, 100, len(records)) if n <= len(records)})
        out["learners"][key] = {
            "cumulative": {str(n): cumulative(records, n) for n in marks},
            "per_image_effort": [round(r["wrong"] / max(1, r["labelled"]), 4) for r in records],
            "per_image_strokes": [r["strokes"] for r in records],
            "update_s": {
                "median": statistics.median(updates) if updates else None,
                "max": max(updates) if updates else None,
                "all": [r["update_s"] for r in records],
            },
            f"holdout_after_{args.holdout_after}": holdout,
            "wall_s": round(time.perf_counter() - t_start, 1),
        }
        if isinstance(learner, FineTune):
            out["learners"][key]["verdicts"] = learner.verdicts
        if isinstance(learner, (Live, LiveAndFineTune)):
            out["learners"][key]["replayed"] = learner.replayed
            out["learners"][key]["replay_read_s"] = learner.replay_s
        import cv2

        probe = cv2.resize(read_pair(*loop[-1][1:], void)[0], (500, 400))
        out["learners"][key]["predict_500x400_s_median"] = latency(learner, probe)
        if args.out:  # what is done so far, in case a later learner is interrupted
            args.out.write_text(json.dumps(out, indent=1) + "\n")
    learners = out["learners"]
    if "static" in learners:
        base = learners["static"]["cumulative"][str(len(loop))]["pixel_effort_vs_hand"]
        for rep in learners.values():
            own = rep["cumulative"][str(len(loop))]["pixel_effort_vs_hand"]
            rep["pixel_effort_vs_static"] = own / base if base else None
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", choices=sorted(DATASETS), default="horse")
    p.add_argument("--data", type=Path, help="the dataset folder (default ../shared/data/...)")
    p.add_argument("--images", type=int, default=50, help="images in the loop (0: all)")
    p.add_argument(
        "--learners",
        type=lambda s: [k for k in s.split(",") if k],
        default=["static", "live", "forest"],
    )
    p.add_argument("--holdout-after", type=int, default=10)
    p.add_argument("--holdout-max", type=int, default=0, help="cap the hold-out images (0: all)")
    p.add_argument("--min-stroke", type=int, default=20)
    p.add_argument("--finetune-every", type=int, default=10, help="images between fine-tunes")
    p.add_argument("--finetune-minutes", type=float, default=2.0, help="budget of each fine-tune")
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        help="NAME=JSON: one more live learner with these LiveConfig fields (repeatable)",
    )
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--out", type=Path, help="also write the JSON here")
    args = p.parse_args(argv)
    unknown = set(args.learners) - set(LEARNERS)
    if unknown:
        p.error(f"unknown learner(s) {sorted(unknown)}; known: {sorted(LEARNERS)}")
    result = run(args)
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
