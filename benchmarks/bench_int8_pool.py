"""Int8 pooling and two tiles at once, each against what it replaced, in one run.

A 4096 x 3072 mosaic of CamVid val frames (20 tiles of 1024 px) is predicted
with the bundled model's int8 network four ways, interleaved (one of each per
round, so a busy machine slows all of them alike):

- ``float_pool_w1``: pooling and unpooling on dequantised floats, one tile at
  a time on all threads (the int8 path before 2026-12-04's evening);
- ``float_pool_w2``: the same, two tiles at once;
- ``int8_pool_w1``: pooling on the int8 codes (:mod:`segstudio.model.int8_pool`);
- ``int8_pool_w2``: both (what ``segstudio predict`` runs on a CPU).

Also checks that both networks give the same classes. Prints one JSON object.
Emulate an AVX2-only CPU with ``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2``.
Run: ``python benchmarks/bench_int8_pool.py [--rounds 4] [--threads 2]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from bench_bigimage import make_mosaic
from machine import machine_info

from segstudio.core.bundled import bundled_model_path
from segstudio.io.images import read_image
from segstudio.model.files import load_model
from segstudio.model.predictor import Predictor
from segstudio.model.quantize import Int8SegNet

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "camvid"))
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mosaic.jpg"
        make_mosaic(Path(args.data) / "val", path, 4096, 3072)
        rgb = read_image(path).rgb
    model = load_model(bundled_model_path())
    variants = {}
    for pool in ("float_pool", "int8_pool"):
        for workers in (1, 2):
            predictor = Predictor(model, device="cpu", precision="int8", tile_workers=workers)
            assert isinstance(predictor.network, Int8SegNet)
            if pool == "float_pool":  # the converted stages, dequantised around float pooling
                predictor.network = predictor.network.net
            variants[f"{pool}_w{workers}"] = predictor
    labels = {k: p.predict(rgb, confidence=False).labels for k, p in variants.items()}  # warm-up
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.rounds):
        for name, predictor in variants.items():
            t0 = time.perf_counter()
            predictor.predict(rgb, confidence=False)
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    base = med["float_pool_w1"]
    print(
        json.dumps(
            {
                "benchmark": "int8_pool",
                "image": [4096, 3072],
                "tiles": variants["int8_pool_w1"].tile_count(3072, 4096),
                "rounds": args.rounds,
                "median_s": {k: round(v, 2) for k, v in med.items()},
                "all_s": {k: [round(t, 2) for t in v] for k, v in times.items()},
                "speedup_vs_float_pool_w1": {k: round(base / v, 2) for k, v in med.items()},
                "same_classes": bool(
                    all(np.array_equal(labels["float_pool_w1"], v) for v in labels.values())
                ),
                "machine": machine_info(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
