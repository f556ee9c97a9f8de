"""A 12000 x 9000 JPEG, end to end: time, peak memory and how fast Stop takes effect.

The image is a mosaic of real CamVid val frames (25 x 25 frames of 480 x 360,
JPEG quality 90), made in a temporary folder. Measured:

- ``cli``: ``segstudio predict BIG.jpg --out DIR`` as a user runs it, in a fresh
  process: wall time from start to exit (reading the JPEG, every tile, writing the
  index and colour PNGs) and that process's peak resident memory. One row per
  ``--variants`` entry: a precision (``auto`` is the predictor's own choice of
  path; ``fp32`` the float32 path, the baseline of the ratios), optionally with
  ``:wN`` for ``--tile-workers N`` (``auto:w1``: one tile at a time, on all
  threads; without it, the CLI's default); ``--tile`` is passed to each.
- ``cancel``: in this process, the decoded image is predicted and cancelled
  after 2, 5 and 9 s (as the window's Stop does), with the CLI's tile workers:
  the time from the cancel to the prediction giving up.

Prints one JSON object naming the CPU. Emulate an AVX2-only CPU with
``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2``. Run:
``python benchmarks/bench_bigimage.py [--model M] [--variants auto fp32] [--threads 2]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import tifffile
from machine import machine_info
from PIL import Image

from segstudio.io.images import list_images, read_image

REPO = Path(__file__).resolve().parents[1]
FRAME_W, FRAME_H = 480, 360


def make_mosaic(val: Path, out: Path, width: int, height: int) -> None:
    """A ``width x height`` JPEG tiled with CamVid frames, cycling through ``val``."""
    frames = list_images(val)
    canvas = np.empty((height, width, 3), np.uint8)
    k = 0
    for y in range(0, height, FRAME_H):
        for x in range(0, width, FRAME_W):
            rgb = read_image(frames[k % len(frames)]).rgb
            k += 1
            h, w = min(FRAME_H, height - y), min(FRAME_W, width - x)
            canvas[y : y + h, x : x + w] = rgb[:h, :w]
    Image.fromarray(canvas).save(out, quality=90)


def run_cli(image: Path, out: Path, model: str | None, variant: str, tile: int) -> dict:
    precision, _, workers = variant.partition(":w")
    cmd = [sys.executable, "-m", "segstudio", "predict", str(image), "--out", str(out),
           "--precision", precision, "--tile", str(tile), "--device", "cpu"]  # fmt: skip
    if workers:
        cmd += ["--tile-workers", workers]
    if model:
        cmd += ["--model", model]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode() if proc.stderr else ""
    if status != 0:
        sys.exit(f"segstudio predict failed: {err.strip()[-500:]}")
    return {"wall_s": round(wall, 1), "peak_rss_gb": round(usage.ru_maxrss / 2**20, 2)}


def cancel_latency(image: Path, model: str | None, tile: int, after: list[float]) -> dict:
    import torch

    from segstudio.cli.common import TILE_WORKERS
    from segstudio.core.bundled import bundled_model_path
    from segstudio.model.files import load_model
    from segstudio.model.predictor import PredictionCancelled, Predictor

    predictor = Predictor(
        load_model(Path(model) if model else bundled_model_path()),
        tile=tile,
        tile_workers=min(TILE_WORKERS, torch.get_num_threads()),
    )
    rgb = read_image(image).rgb
    delays = []
    for seconds in after:
        flag = threading.Event()
        ended: list[float] = []

        def work(flag: threading.Event = flag, ended: list[float] = ended) -> None:
            with contextlib.suppress(PredictionCancelled):
                predictor.predict(rgb, cancelled=flag.is_set)
            ended.append(time.perf_counter())

        thread = threading.Thread(target=work)
        thread.start()
        time.sleep(seconds)
        asked = time.perf_counter()
        flag.set()
        thread.join()
        if ended[0] > asked:  # else it had finished before the cancel: nothing to measure
            delays.append(ended[0] - asked)
    if not delays:
        return {"path": predictor.path, "note": "every prediction ended before its cancel"}
    return {
        "path": predictor.path,
        "tile_workers": predictor.tile_workers,
        "after_s": after[: len(delays)],
        "cancel_s": [round(d, 3) for d in delays],
        "max_s": round(max(delays), 3),
        "median_s": round(statistics.median(delays), 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", help="model file (default: the bundled model)")
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "camvid"))
    ap.add_argument("--width", type=int, default=12000)
    ap.add_argument("--height", type=int, default=9000)
    ap.add_argument("--variants", nargs="+", default=["auto", "auto:w1", "fp32"])
    ap.add_argument("--tile", type=int, default=1024, help="tile side (default: the CLI's)")
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    ap.add_argument("--no-cancel", action="store_true")
    ap.add_argument("--tiff", action="store_true", help="also the same image as a tiled TIFF")
    args = ap.parse_args()
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the CLI processes too
        import torch

        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / "big.jpg"
        make_mosaic(Path(args.data) / "val", image, args.width, args.height)
        rows = {}
        for variant in args.variants:
            out = Path(tmp) / f"out_{variant.replace(':', '_')}"
            rows[variant] = run_cli(image, out, args.model, variant, args.tile)
        if args.tiff:
            tiff = Path(tmp) / "big.tif"
            pixels = read_image(image).rgb
            tifffile.imwrite(tiff, pixels, photometric="rgb", tile=(256, 256), compression="zlib")
            del pixels
            rows["auto_tiff"] = run_cli(tiff, Path(tmp) / "out_tiff", args.model, "auto", args.tile)
            rows["auto_tiff"]["tiff_mb"] = round(tiff.stat().st_size / 2**20, 1)
        result = {
            "benchmark": "big_image",
            "image": [args.width, args.height],
            "jpeg_mb": round(image.stat().st_size / 2**20, 1),
            "tile": args.tile,
            "cli": rows,
        }
        if "fp32" in rows and len(rows) > 1:
            base = rows["fp32"]["wall_s"]
            result["speedup_vs_fp32"] = {
                k: round(base / v["wall_s"], 2) for k, v in rows.items() if k != "fp32"
            }
        if "auto" in rows and "auto:w1" in rows:
            result["tile_workers_speedup"] = round(
                rows["auto:w1"]["wall_s"] / rows["auto"]["wall_s"], 2
            )
        if not args.no_cancel:
            result["cancel"] = cancel_latency(image, args.model, args.tile, [2.0, 5.0, 9.0])
    result["machine"] = machine_info()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
