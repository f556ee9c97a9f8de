"""Benchmark the fill tool's region (what its preview shows under the cursor).

:func:`segstudio.core.tools.fill_region` finds the connected region of
pixels like the clicked one (every channel within the tolerance of the seed)
that hold the seed's label, with one cv2.floodFill in mask-only, fixed-range
mode, the labelled pixels blocked in its mask. The baseline, in the same run,
is the usual numpy + scipy way: threshold the whole image against the seed
colour, AND it with the unlabelled area, label the connected components
(``scipy.ndimage.label``) and keep the seed's. Both run on a 4000 x 3000 image
(a CamVid frame scaled up when the data is there, else a synthetic street of
noisy bands) for a few seeds, and must find the same region. Prints one JSON
object. Usage::

    python benchmarks/bench_fill.py [--repeat N] [--tolerance T]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage

try:
    from segstudio.core.labelset import UNLABELED
    from segstudio.core.tools import fill_region
except ModuleNotFoundError:  # a source checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from segstudio.core.labelset import UNLABELED
    from segstudio.core.tools import fill_region

SHAPE = (3000, 4000)  # (height, width)
CAMVID = Path(
    os.environ.get("SEGSTUDIO_CAMVID", Path(__file__).resolve().parents[2] / "shared/data/camvid")
)


def image() -> tuple[np.ndarray, str]:
    frames = sorted((CAMVID / "val").glob("*.png")) if (CAMVID / "val").is_dir() else []
    if frames:
        rgb = cv2.cvtColor(cv2.imread(str(frames[0])), cv2.COLOR_BGR2RGB)
        return cv2.resize(rgb, SHAPE[::-1], interpolation=cv2.INTER_CUBIC), frames[0].name
    rng = np.random.default_rng(0)
    rgb = np.zeros((*SHAPE, 3), np.uint8)
    for i, level in enumerate((200, 120, 60, 90)):  # sky, buildings, road, pavement
        rgb[i * SHAPE[0] // 4 : (i + 1) * SHAPE[0] // 4] = level
    noise = rng.integers(0, 8, rgb.shape, dtype=np.uint8)
    return cv2.add(rgb, noise), "synthetic bands"


def baseline(rgb: np.ndarray, labels: np.ndarray, x: int, y: int, t: int) -> np.ndarray:
    diff = np.abs(rgb.astype(np.int16) - rgb[y, x].astype(np.int16)).max(axis=2)
    inside = (diff <= t) & (labels == labels[y, x])
    comp, _ = ndimage.label(inside)  # 4-connected
    return comp == comp[y, x]


def timed(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--tolerance", type=int, default=12)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    rgb, source = image()
    labels = np.full(SHAPE, UNLABELED, np.uint8)
    labels[: SHAPE[0] // 5, : SHAPE[1] // 3] = 0  # some labelled pixels to stay out of
    h, w = SHAPE
    seeds = [(w // 2, h - 200), (w // 2, h // 10), (w // 5, h // 2), (4 * w // 5, h // 2)]
    rows = []
    for x, y in seeds:
        ms, placed = timed(
            lambda x=x, y=y: fill_region(rgb, labels, x, y, tolerance=args.tolerance), args.repeat
        )
        base_ms, expected = timed(
            lambda x=x, y=y: baseline(rgb, labels, x, y, args.tolerance), args.repeat
        )
        got = placed.full(SHAPE) if placed is not None else np.zeros(SHAPE, bool)
        if not np.array_equal(got, expected):
            raise SystemExit(f"fill_region and the baseline disagree at seed {(x, y)}")
        rows.append(
            {
                "seed": [x, y],
                "region_pixels": int(got.sum()),
                "fill_region_ms": round(ms, 2),
                "baseline_ms": round(base_ms, 2),
                "speedup": round(base_ms / ms, 1),
            }
        )
    print(
        json.dumps(
            {
                "benchmark": "fill region (the fill tool's preview and click)",
                "image": f"{SHAPE[1]} x {SHAPE[0]}, {source}",
                "tolerance": args.tolerance,
                "machine": platform.processor() or platform.machine(),
                "cv2_threads": 1,
                "seeds": rows,
                "median_fill_region_ms": statistics.median(r["fill_region_ms"] for r in rows),
                "median_speedup": statistics.median(r["speedup"] for r in rows),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
