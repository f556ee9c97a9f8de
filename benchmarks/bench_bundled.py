"""The bundled CamVid model: its quality on CamVid val and its latency on this CPU.

Quality comes from ``segstudio eval`` itself (run as a subprocess, the
command a user types), so the model card's figures are the ones ``eval``
prints. Latency is measured on real CamVid val frames (480 x 360):

- baseline: the same network, float32, eager, NCHW, batch norm unfolded,
  under ``torch.no_grad()``, what a plain PyTorch loop gives;
- ours: :class:`segstudio.model.predictor.Predictor` end to end (uint8
  image in, class map and confidence out) with its defaults.

Prints one JSON object. Run:
``python benchmarks/bench_bundled.py [--model M] [--data ../shared/data/camvid]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from machine import machine_info

from segstudio.core.bundled import bundled_model_path
from segstudio.io.images import list_images, read_image
from segstudio.model.arch import count_parameters
from segstudio.model.files import load_model
from segstudio.model.predictor import Predictor

REPO = Path(__file__).resolve().parents[1]


def _latency(fn, frames: list, repeat: int) -> list[float]:
    for frame in frames[:2]:  # warm-up
        fn(frame)
    times = []
    for i in range(repeat):
        frame = frames[i % len(frames)]
        t0 = time.perf_counter()
        fn(frame)
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", help="model file (default: the bundled model)")
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "camvid"))
    ap.add_argument("--repeat", type=int, default=21, help="timed predictions per variant")
    ap.add_argument("--frames", type=int, default=7, help="val frames cycled through")
    args = ap.parse_args()
    path = Path(args.model) if args.model else bundled_model_path()
    if path is None:
        sys.exit("no --model given, and this build has no bundled model")
    val = Path(args.data) / "val"
    if not val.is_dir():
        sys.exit(f"{val}: no CamVid val split here (give --data)")

    t0 = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "segstudio", "eval", str(val), "--model", str(path), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    eval_s = time.perf_counter() - t0
    if run.returncode != 0:
        sys.exit(f"segstudio eval failed: {run.stderr.strip()}")
    quality = json.loads(run.stdout)

    model = load_model(path)
    frames = [read_image(p).rgb for p in list_images(val)[: args.frames]]
    net = model.network.float().eval()

    def baseline(rgb) -> None:
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float().div(255)
        with torch.no_grad():
            net(x).argmax(1)

    predictor = Predictor(model)
    ours = _latency(predictor.predict, frames, args.repeat)
    base = _latency(baseline, frames, max(5, args.repeat // 3))
    med_o, med_b = statistics.median(ours), statistics.median(base)
    print(
        json.dumps(
            {
                "benchmark": "bundled_model",
                "model": str(path),
                "file_bytes": path.stat().st_size,
                "arch": model.info.arch.to_dict(),
                "parameters": count_parameters(net),
                "eval_command": f"segstudio eval {val} --model {path}",
                "quality": quality,
                "eval_wall_s": round(eval_s, 2),
                "latency_480x360": {
                    "predictor_s": {
                        "median": round(med_o, 4),
                        "p90": round(statistics.quantiles(ours, n=10)[-1], 4),
                        "min": round(min(ours), 4),
                    },
                    "baseline_fp32_eager_s": {
                        "median": round(med_b, 4),
                        "min": round(min(base), 4),
                    },
                    "speedup_median": round(med_b / med_o, 2),
                    "repeat": args.repeat,
                    "predictor": repr(predictor),
                    "predictor_device": str(predictor.device),
                    "predictor_dtype": str(predictor.dtype).replace("torch.", ""),
                },
                "machine": machine_info(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
