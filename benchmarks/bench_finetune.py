"""One click of Fine-tune on the first frames of a drive: does the rest of the drive get better?

CamVid val is one continuous drive (101 consecutive frames) that the bundled
model never saw. A labeller corrects its first ``--frames`` frames; a
fine-tune from the bundled model then runs, as the window's one click does
(the same time budget; 30 % of the few labelled frames held out for the
verdict); and the model is scored on every later frame of the drive, which
no run saw. In the same run, two recipes:

- ``few-shot`` (ours, :data:`segstudio.training.recipes.FEW_SHOT`): encoder at
  a tenth of the learning rate, batch-norm statistics kept, the best weights
  on validation kept, early stop;
- ``previous``: the recipe the window used before (AdamW at 1e-3 for every
  layer, batch norm in train mode, the final weights).

Figures must hold on CPUs without AVX-512 or AMX; to measure as such a CPU
on one that has them, run with ``ONEDNN_MAX_CPU_ISA=AVX2
ATEN_CPU_CAPABILITY=avx2``. Prints one JSON object:

``python benchmarks/bench_finetune.py [--frames 10] [--minutes 5] [--data ../shared/data/camvid]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_bundled import cpu_name

from segstudio.core.bundled import bundled_model_path
from segstudio.core.jobs import drive
from segstudio.io.images import list_images

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "camvid"
RECIPES = {
    "few-shot": "FEW_SHOT",
    "previous": None,
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=SHARED)
    p.add_argument("--frames", type=int, default=10)
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument(
        "--recipes", type=lambda s: [r for r in s.split(",") if r], default=list(RECIPES)
    )
    p.add_argument("--test-max", type=int, default=0, help="cap the later frames scored (0: all)")
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="another recipe to compare, e.g. hot='{\"lr\": 1e-3}' (on top of few-shot)",
    )
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)

    import torch

    from segstudio.model.files import load_model
    from segstudio.training.config import TrainConfig
    from segstudio.training.data import from_folder
    from segstudio.training.evaluate import evaluate
    from segstudio.training.events import TrainProgress
    from segstudio.training.loop import fine_tune
    from segstudio.training.recipes import FEW_SHOT

    bundled = bundled_model_path()
    if bundled is None:
        raise SystemExit("no bundled model in this build")
    init = load_model(bundled)
    frames = list_images(args.data / "val")
    first, rest = frames[: args.frames], frames[args.frames :]
    if args.test_max:
        rest = rest[: args.test_max]
    out: dict = {
        "benchmark": "bench_finetune",
        "cpu": cpu_name(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA"),
        "threads": torch.get_num_threads(),
        "labelled_frames": [f.stem for f in first],
        "later_frames_scored": len(rest),
        "minutes": args.minutes,
        "recipes": {},
    }
    with tempfile.TemporaryDirectory() as tmp:

        def folder(name: str, paths: list[Path]) -> Path:
            root = Path(tmp) / name
            (root / "images").mkdir(parents=True)
            (root / "labels").mkdir()
            (root / "classes.json").write_text((args.data / "classes.json").read_text())
            for f in paths:
                (root / "images" / f.name).symlink_to(f)
                (root / "labels" / f"{f.stem}.png").symlink_to(
                    args.data / "valannot" / f"{f.stem}.png"
                )
            return root

        labelled = from_folder(folder("labelled", first), void=11, val_fraction=0.3, seed=0)
        test = from_folder(folder("test", rest), void=11, val_fraction=0.0, seed=0).train
        out["train_frames"] = [s.name for s in labelled.train]
        out["val_frames"] = [s.name for s in labelled.val]
        t0 = time.perf_counter()
        out["before"] = evaluate(init, test)["mean_iou"]
        out["eval_s"] = round(time.perf_counter() - t0, 1)
        print(
            f"bundled model on {len(test)} later frames: mIoU {out['before']:.4f}", file=sys.stderr
        )
        variants = {}
        for v in args.variant:
            vname, _, text = v.partition("=")
            variants[vname] = {**FEW_SHOT, **json.loads(text)}
        for name in [*args.recipes, *variants]:
            recipe = variants.get(name, FEW_SHOT if RECIPES.get(name) else {})
            config = TrainConfig(minutes=args.minutes, **recipe)
            t0 = time.perf_counter()
            gen = fine_tune(labelled, init=init, config=config)
            def show(report: TrainProgress, name: str = name) -> None:
                if report.kind == "message" or report.metrics is not None:
                    print(f"[{name}] {report.message}", file=sys.stderr, flush=True)

            result = drive(gen, show)
            train_s = time.perf_counter() - t0
            after = evaluate(result.model, test)["mean_iou"]
            out["recipes"][name] = {
                "later_frames_miou": after,
                "delta_vs_bundled": after - out["before"],
                "val_before": result.before and result.before["mean_iou"],
                "val_after": result.after and result.after["mean_iou"],
                "improved": result.improved,
                "verdict": result.verdict,
                "steps": result.model.info.provenance["steps"],
                "train_s": round(train_s, 1),
                "precision": result.model.info.provenance["precision"],
            }
            print(f"[{name}] later frames mIoU {after:.4f}", file=sys.stderr, flush=True)
    text = json.dumps(out, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
