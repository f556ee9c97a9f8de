"""What tiling costs in quality and time: the tile overlap, measured on real frames.

A mosaic of every CamVid val frame (11 x 10 frames of 480 x 360, 5280 x 3600
pixels, the empty cells black and unlabelled) and the mosaic of their labels.
Each ``--overlaps`` entry predicts the mosaic in tiles of ``--tile`` pixels with
that overlap; for each: wall time (median of ``--repeat``), mean IoU against the
labels, and pixel agreement with the frames predicted one by one (no tile
borders at all, the reference). A tile border through a frame loses context the
network would have had; a wider overlap blends more of it away but predicts
more pixels twice.

Prints one JSON object naming the CPU. Emulate an AVX2-only CPU with
``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2``. Run:
``python benchmarks/bench_tiling.py [--model M] [--overlaps 0 32 64 128] [--threads 2]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
from machine import machine_info

from segstudio.core.metrics import ConfusionMatrix
from segstudio.io.images import list_images

REPO = Path(__file__).resolve().parents[1]
FRAME_W, FRAME_H, COLS = 480, 360, 11


def mosaic(data: Path, void: int) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """The val frames side by side, their labels (void and empty cells 255), and
    each frame's top-left corner."""
    from segstudio.training.data import Sample

    frames = list_images(data / "val")
    rows = -(-len(frames) // COLS)
    rgb = np.zeros((rows * FRAME_H, COLS * FRAME_W, 3), np.uint8)
    labels = np.full(rgb.shape[:2], 255, np.uint8)
    corners = []
    for k, image in enumerate(frames):
        sample = Sample(image.name, image, label_path=data / "valannot" / image.name, void=void)
        frame, lab, _ = sample.load()
        y, x = (k // COLS) * FRAME_H, (k % COLS) * FRAME_W
        rgb[y : y + FRAME_H, x : x + FRAME_W] = frame
        labels[y : y + FRAME_H, x : x + FRAME_W] = lab
        corners.append((y, x))
    return rgb, labels, corners


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", help="model file (default: the bundled model)")
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "camvid"))
    ap.add_argument("--void", type=int, default=11, help="CamVid's void label (ignored)")
    ap.add_argument("--tile", type=int, default=1024)
    ap.add_argument("--overlaps", type=int, nargs="+", default=[0, 32, 64, 128])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args()

    import torch

    from segstudio.core.bundled import bundled_model_path
    from segstudio.model.files import load_model
    from segstudio.model.predictor import Predictor

    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_model(Path(args.model) if args.model else bundled_model_path())
    rgb, labels, corners = mosaic(Path(args.data), args.void)
    n = model.info.labelset.num_classes

    whole = Predictor(model, device="cpu", tile=max(rgb.shape))
    by_frame = ConfusionMatrix(n, ignore_index=255)
    for y, x in corners:
        frame = rgb[y : y + FRAME_H, x : x + FRAME_W]
        by_frame.update(whole.predict(frame).labels, labels[y : y + FRAME_H, x : x + FRAME_W])
    t0 = time.perf_counter()
    reference = whole.predict(rgb).labels
    whole_s = time.perf_counter() - t0
    framed = labels != 255
    cm = ConfusionMatrix(n, ignore_index=255)
    cm.update(reference, labels)
    result: dict = {
        "machine": machine_info(),
        "model": str(args.model or "bundled"),
        "path": whole.path,
        "mosaic": f"{rgb.shape[1]} x {rgb.shape[0]}",
        "frames": len(corners),
        "tile": args.tile,
        "frame_by_frame": {"mean_iou": round(by_frame.compute().mean_iou, 4)},
        "whole_mosaic": {"wall_s": round(whole_s, 2), "mean_iou": round(cm.compute().mean_iou, 4)},
        "overlaps": {},
    }
    for overlap in args.overlaps:
        predictor = Predictor(model, device="cpu", tile=args.tile, overlap=overlap)
        times, pred = [], None
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            pred = predictor.predict(rgb)
            times.append(time.perf_counter() - t0)
        assert pred is not None
        cm = ConfusionMatrix(n, ignore_index=255)
        cm.update(pred.labels, labels)
        agree = np.count_nonzero((pred.labels == reference) & framed) / np.count_nonzero(framed)
        result["overlaps"][str(overlap)] = {
            "tiles": predictor.tile_count(*rgb.shape[:2]),
            "wall_s_median": round(statistics.median(times), 2),
            "mean_iou": round(cm.compute().mean_iou, 4),
            "agreement_with_whole": round(agree, 4),
        }
    base = result["overlaps"].get("128")
    if base:
        for row in result["overlaps"].values():
            row["time_ratio_to_128"] = round(row["wall_s_median"] / base["wall_s_median"], 3)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
