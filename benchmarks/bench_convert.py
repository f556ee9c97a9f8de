"""Benchmark RGB <-> index label conversion against a per-class loop.

The SegNet authors found converting colour label images to class ids "takes
too much time"; the usual code loops over the classes and compares every pixel
with each colour. This script times that loop and SegStudio's table lookup on
the same realistic CamVid-sized image (960 x 720, the 31 classes of the full
CamVid palette plus void), checks that both give the same result, and prints
one JSON object. Usage::

    python benchmarks/bench_convert.py [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

try:
    from segstudio.core import convert
    from segstudio.core.labelset import UNLABELED, LabelSet, preset
except ModuleNotFoundError:  # a source checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from segstudio.core import convert
    from segstudio.core.labelset import UNLABELED, LabelSet, preset

WIDTH, HEIGHT = 960, 720
BLOCK = 24  # side of the blocky regions, in pixels


def rgb_to_index_per_class_loop(rgb: np.ndarray, labelset: LabelSet) -> np.ndarray:
    """The naive baseline: one full-image comparison per class colour."""
    out = np.full(rgb.shape[:2], UNLABELED, dtype=np.uint8)
    for i, color in enumerate(labelset.colors):
        out[np.all(rgb == color, axis=-1)] = i
    return out


def make_label_image(labelset: LabelSet, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return (index map, RGB image): blocky regions of every class plus some void."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, labelset.num_classes, (HEIGHT // BLOCK, WIDTH // BLOCK))
    small = small.astype(np.uint8)
    small[rng.random(small.shape) < 0.05] = UNLABELED
    index = cv2.resize(small, (WIDTH, HEIGHT), interpolation=cv2.INTER_NEAREST)
    return index, convert.index_to_rgb(index, labelset)


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def run(repeat: int) -> dict[str, Any]:
    labelset = preset("camvid32")
    index, rgb = make_label_image(labelset)

    # First call builds the 16 MiB colour -> id table; time it on its own.
    convert._rgb_lut.cache_clear()
    start = time.perf_counter()
    first = convert.rgb_to_index(rgb, labelset)
    first_call_ms = (time.perf_counter() - start) * 1e3
    convert._rgb_lut.cache_clear()
    start = time.perf_counter()
    convert._rgb_lut(tuple(c.color for c in labelset.classes))
    lut_build_ms = (time.perf_counter() - start) * 1e3

    baseline = rgb_to_index_per_class_loop(rgb, labelset)
    if not (np.array_equal(first, index) and np.array_equal(baseline, index)):
        raise SystemExit("benchmark self-check failed: conversions disagree")

    ours_ms = median_ms(lambda: convert.rgb_to_index(rgb, labelset), repeat)
    loop_ms = median_ms(lambda: rgb_to_index_per_class_loop(rgb, labelset), repeat)
    to_rgb_ms = median_ms(lambda: convert.index_to_rgb(index, labelset), repeat)
    gather_ms = median_ms(lambda: labelset.palette()[index], repeat)
    return {
        "benchmark": "rgb_to_index",
        "image": {"width": WIDTH, "height": HEIGHT, "block": BLOCK},
        "label_set": labelset.name,
        "classes": labelset.num_classes,
        "unlabeled_fraction": round(float(np.mean(index == UNLABELED)), 4),
        "repeat": repeat,
        "rgb_to_index_ms": round(ours_ms, 3),
        "per_class_loop_ms": round(loop_ms, 3),
        "speedup_vs_loop": round(loop_ms / ours_ms, 1),
        "first_call_ms": round(first_call_ms, 3),
        "lut_build_ms": round(lut_build_ms, 3),
        "index_to_rgb_ms": round(to_rgb_ms, 3),
        "index_to_rgb_numpy_gather_ms": round(gather_ms, 3),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "machine": platform.machine(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9, help="timed runs per method (>= 7)")
    args = parser.parse_args(argv)
    sys.stdout.write(json.dumps(run(max(7, args.repeat))) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
