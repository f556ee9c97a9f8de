"""One click of Fine-tune on the first frames of a drive: does the rest of the drive get better?

CamVid val is one continuous drive (101 consecutive frames, sequence 0016E5)
that the bundled model never saw. A labeller corrects its first ``--frames``
frames; a fine-tune from the bundled model then runs as the window's one
click does (:func:`segstudio.session.training.one_click`: 30 % of the few
labelled frames held out for the verdict, the best weights on them kept);
and the model is scored on every later frame of the drive, which no run saw.
Recipes, in the same run:

- ``few-shot`` (:data:`segstudio.training.recipes.FEW_SHOT`, what one click
  uses): encoder at a tenth of the learning rate, batch-norm statistics kept,
  the best weights on validation kept, early stop;
- ``previous``: the recipe the window used before (AdamW at 1e-3 for every
  layer, batch norm in train mode, the final weights);
- any ``--variant NAME=JSON`` (fields on top of few-shot), e.g. the two-stage
  ``{"lr": 2e-3, "freeze_encoder": true, "live_head": true}`` (the decoder
  fine-tuned, then a live head judged on the held-out frames; its row also
  scores the fine-tuned network alone).

``--live`` adds the live learner alone (:func:`segstudio.training.live_quick.quick_train`
from the bundled model on all the labelled frames), what a live head adds to.
``--from-live``: one click starts from that live model, as the window's does
with "Learn as I paint" on (its verdict is then against the live learner);
``used_later_frames_miou`` scores the model the user keeps: the new one when
the verdict says better, else the live model.

A time budget (``--minutes``, as the window) gives fewer steps on a busy CPU;
``--epochs N`` fixes the work instead, to compare recipes fairly. ``--split
train --sequence 0006R0`` runs the same on a drive of CamVid train (the
bundled model was trained on those frames: a sanity check only).

Figures must hold on CPUs without AVX-512 or AMX; to measure as such a CPU
on one that has them, run with ``ONEDNN_MAX_CPU_ISA=AVX2
ATEN_CPU_CAPABILITY=avx2``. Prints one JSON object:

``--start N`` labels frames N..N+9 instead of the first ten (the later frames
are still the ones after them), to see that a gain is not one stretch's luck.

``python benchmarks/bench_finetune.py [--frames 10] [--minutes 5 | --epochs N]
[--split val --sequence 0016E5] [--start N] [--recipes few-shot,previous]
[--variant NAME=JSON] [--live]``
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import cpu_name, machine_info

from segstudio.core.bundled import bundled_model_path
from segstudio.core.jobs import drive
from segstudio.io.images import list_images

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "camvid"
RECIPES = ("few-shot", "previous")


def _recipe(name: str, variants: dict[str, dict[str, Any]]) -> dict[str, Any]:
    from segstudio.training.recipes import FEW_SHOT

    if name in variants:
        return variants[name]
    return {"few-shot": FEW_SHOT, "previous": {}}[name]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=SHARED)
    p.add_argument("--split", default="val", help="val or train (a sanity check only)")
    p.add_argument("--sequence", default="", help="frame-name prefix of one drive, e.g. 0006R0")
    p.add_argument("--frames", type=int, default=10)
    p.add_argument(
        "--start", type=int, default=0, help="the first labelled frame (0: the drive's first)"
    )
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=float, default=5.0)
    budget.add_argument("--epochs", type=int, help="a fixed number of epochs instead of minutes")
    p.add_argument(
        "--recipes", type=lambda s: [r for r in s.split(",") if r], default=list(RECIPES)
    )
    p.add_argument("--test-max", type=int, default=0, help="cap the later frames scored (0: all)")
    p.add_argument("--stride", type=int, default=1, help="score every N-th later frame")
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="another recipe to compare, e.g. hot='{\"lr\": 1e-3}' (on top of the current one)",
    )
    p.add_argument(
        "--holdout",
        choices=["hash", "tail"],
        default="hash",
        help="which labelled frames the fine-tune validates on: hash (the one-click rule, 30 %% "
        "by name hash) or tail (the last 30 %% in name order: the frames furthest on in the drive)",
    )
    p.add_argument("--live", action="store_true", help="also the live learner alone")
    p.add_argument(
        "--from-live",
        action="store_true",
        help="one click starts from that live learner's model (Learn as I paint on)",
    )
    p.add_argument(
        "--replay",
        action="store_true",
        help="the live learner (and a live head) replay the start model's sure answers on 10 "
        "later frames, as the window does with a project's unlabelled images",
    )
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)

    import torch

    from segstudio.model.files import load_model
    from segstudio.session.training import one_click
    from segstudio.training.config import TrainConfig
    from segstudio.training.data import TrainingData, from_folder
    from segstudio.training.evaluate import evaluate
    from segstudio.training.events import TrainProgress
    from segstudio.training.live_quick import quick_train, spread
    from segstudio.training.recipes import FEW_SHOT

    bundled = bundled_model_path()
    if bundled is None:
        raise SystemExit("no bundled model in this build")
    init = load_model(bundled)
    frames = [f for f in list_images(args.data / args.split) if f.stem.startswith(args.sequence)]
    first = frames[args.start : args.start + args.frames]
    rest = frames[args.start + args.frames :]
    if len(first) < args.frames or not rest:
        raise SystemExit(f"the drive has {len(frames)} frames: none left after the labelled ones")
    if args.test_max:
        rest = rest[: args.test_max]
    rest = rest[:: args.stride]
    out: dict = {
        "benchmark": "bench_finetune",
        "cpu": cpu_name(),
        "machine": machine_info(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA"),
        "threads": torch.get_num_threads(),
        "load_average": os.getloadavg()[0],
        "split": args.split,
        "sequence": args.sequence or None,
        "labelled_frames": [f.stem for f in first],
        "later_frames_scored": len(rest),
        "budget": {"epochs": args.epochs} if args.epochs else {"minutes": args.minutes},
        "recipes": {},
    }
    annot = args.data / f"{args.split}annot"
    with tempfile.TemporaryDirectory() as tmp:

        def folder(name: str, paths: list[Path]) -> Path:
            root = Path(tmp) / name
            (root / "images").mkdir(parents=True)
            (root / "labels").mkdir()
            (root / "classes.json").write_text((args.data / "classes.json").read_text())
            for f in paths:
                (root / "images" / f.name).symlink_to(f)
                (root / "labels" / f"{f.stem}.png").symlink_to(annot / f"{f.stem}.png")
            return root

        # the one-click rule's hold-out (30 % of few images, by name hash)
        labelled = from_folder(folder("labelled", first), void=11, val_fraction=0.3, seed=0)
        if args.holdout == "tail":
            every = sorted(labelled.train + labelled.val, key=lambda s: s.name)
            k = len(labelled.val)
            labelled = TrainingData(
                tuple(every[:-k]), tuple(every[-k:]), labelled.labelset, labelled.source
            )
        test = from_folder(folder("test", rest), void=11, val_fraction=0.0, seed=0).train
        # replay: the window's choice among a project's unlabelled images (here the later
        # frames, whose images, never their labels, are then seen); scored also without them
        replay = spread(rest) if args.replay else []
        labelled = dataclasses.replace(labelled, unlabelled=tuple(replay))
        replayed = {p.name for p in replay}
        unseen = [s for s in test if s.image_path.name not in replayed]
        out["replayed_frames"] = [p.stem for p in replay]

        def score(model: Any) -> dict[str, float]:
            both = {"later_frames_miou": evaluate(model, test)["mean_iou"]}
            if replay:
                both["later_frames_not_replayed_miou"] = evaluate(model, unseen)["mean_iou"]
            return both

        out["train_frames"] = [s.name for s in labelled.train]
        out["val_frames"] = [s.name for s in labelled.val]
        t0 = time.perf_counter()
        before = score(init)
        out["before"] = before["later_frames_miou"]
        out["before_not_replayed"] = before.get("later_frames_not_replayed_miou")
        out["eval_s"] = round(time.perf_counter() - t0, 1)
        print(
            f"bundled model on {len(test)} later frames: mIoU {out['before']:.4f}", file=sys.stderr
        )
        variants = {}
        for v in args.variant:
            vname, _, text = v.partition("=")
            variants[vname] = {**FEW_SHOT, **json.loads(text)}
        budget = {"epochs": args.epochs} if args.epochs else {"minutes": args.minutes}
        start = init
        if args.live or args.from_live:  # the live learner alone, on all the frames
            t0 = time.perf_counter()
            everything = from_folder(folder("all", first), void=11, val_fraction=0.0)
            trained = drive(quick_train(everything, init, replay=replay))
            assert trained is not None
            live_model = trained[0]
            fit_s = time.perf_counter() - t0
            scores = score(live_model)
            live = scores["later_frames_miou"]
            out["live_only"] = {
                **scores,
                "delta_vs_bundled": live - out["before"],
                "fit_s": round(fit_s, 1),
            }
            print(f"live learner alone: mIoU {live:.4f}", file=sys.stderr, flush=True)
            if args.from_live:  # the model in use when the user clicks
                start = live_model
        for name in [*args.recipes, *variants]:
            config = TrainConfig.from_dict({**_recipe(name, variants), **budget})
            t0 = time.perf_counter()

            def show(report: TrainProgress, name: str = name) -> None:
                if report.kind == "message" or report.metrics is not None:
                    print(f"[{name}] {report.message}", file=sys.stderr, flush=True)

            result = drive(one_click(labelled, start, config), show)
            assert result is not None
            train_s = time.perf_counter() - t0
            scores = score(result.model)
            after = scores["later_frames_miou"]
            prov = result.model.info.provenance
            deep = prov.get("deep", prov)  # a live model: the deep run's lineage inside
            row = {
                "recipe": config.to_dict(),
                **scores,
                "delta_vs_bundled": after - out["before"],
                "model": result.model.info.arch.name,
                "val_before": result.before and result.before["mean_iou"],
                "val_after": result.after and result.after["mean_iou"],
                "val_deep_only": deep.get("after_mean_iou"),
                "improved": result.improved,
                "verdict": result.verdict,
                "steps": deep.get("steps"),
                "trained_on": deep.get("train_images"),
                "refit": deep.get("refit"),
                "live_head": prov.get("live_head"),
                "train_s": round(train_s, 1),
                "precision": deep.get("precision"),
            }
            if result.model.info.arch.name == "live":  # and the fine-tuned network alone
                from segstudio.model.live import base_model

                alone = evaluate(base_model(result.model), test)["mean_iou"]
                row["network_alone_later_frames_miou"] = alone
                row["network_alone_delta"] = alone - out["before"]
            if start is not init:  # the user takes it only when it beats the live learner
                kept = result.improved is True
                row["used_after_click"] = "the new model" if kept else "the live model"
                row["used_later_frames_miou"] = (
                    after if kept else out["live_only"]["later_frames_miou"]
                )
            print(f"[{name}] later frames mIoU {after:.4f}", file=sys.stderr, flush=True)
            out["recipes"][name] = row
    text = json.dumps(out, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
