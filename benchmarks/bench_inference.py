"""Inference latency per architecture at 480 x 360 on this machine.

Baseline: the plain network, float32, eager, NCHW, batch norm unfolded, under
``torch.no_grad()`` -- what a user gets from a straightforward PyTorch loop.
Ours: :class:`segstudio.model.predictor.Predictor` end to end (uint8 image in,
class map and confidence out), with its device/precision defaults.

Prints one JSON object: per architecture, the median and min seconds of
each, their ratio, the network's GFLOPs, and the predictor's achieved
TFLOP/s. Run: ``python benchmarks/bench_inference.py [--repeat N] [--arch A ...]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from machine import machine_info
from torch.utils.flop_counter import FlopCounterMode

from segstudio.core.labelset import preset
from segstudio.model.arch import ArchSpec, count_parameters
from segstudio.model.files import new_model
from segstudio.model.predictor import Predictor

CONFIGS = {
    "segnet": ArchSpec("segnet"),
    "segnet_w0.5": ArchSpec("segnet", {"width": 0.5}),
    "segnet_w0.25": ArchSpec("segnet", {"width": 0.25}),
    "segnet_basic": ArchSpec("segnet_basic"),
    "unet_w0.5": ArchSpec("unet", {"width": 0.5}),
    "unet_w0.25": ArchSpec("unet", {"width": 0.25}),
    "fcn8s_w0.5": ArchSpec("fcn8s", {"width": 0.5}),
    "deconvnet_w0.5": ArchSpec("deconvnet", {"width": 0.5}),
    "deeplab_w0.5": ArchSpec("deeplab", {"width": 0.5}),
    "deeplab_w0.25": ArchSpec("deeplab", {"width": 0.25}),
    "pspnet_w0.5": ArchSpec("pspnet", {"width": 0.5}),
}


def _times(fn: Callable[[], object], repeat: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--arch", nargs="*", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--height", type=int, default=360)
    ap.add_argument("--width", type=int, default=480)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (args.height, args.width, 3), dtype=np.uint8)
    labelset = preset("camvid11")
    results = {}
    for name in args.arch:
        model = new_model(CONFIGS[name], labelset)
        net = model.network.eval()
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float().div(255)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            net(x)
        gflop = counter.get_total_flops() / 1e9

        def baseline(net=net, x=x) -> None:
            with torch.no_grad():
                net(x).argmax(1)

        predictor = Predictor(model)
        base = _times(baseline, args.repeat)
        ours = _times(lambda p=predictor: p.predict(rgb), args.repeat)
        med_b, med_o = statistics.median(base), statistics.median(ours)
        results[name] = {
            "arch": CONFIGS[name].to_dict(),
            "parameters": count_parameters(net),
            "gflop": round(gflop, 1),
            "baseline_fp32_eager_s": {"median": round(med_b, 4), "min": round(min(base), 4)},
            "predictor_s": {"median": round(med_o, 4), "min": round(min(ours), 4)},
            "speedup_median": round(med_b / med_o, 2),
            "predictor_tflops": round(gflop / 1e3 / med_o, 2),
            "predictor": repr(predictor),
        }
    print(
        json.dumps(
            {
                "benchmark": "inference",
                "image": [args.width, args.height],
                "repeat": args.repeat,
                "machine": machine_info(),
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
