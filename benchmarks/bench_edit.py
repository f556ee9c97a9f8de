"""Benchmark a brush drag: SegStudio's edit path against full-image painting.

The GUI calls the brush on every mouse-move of a drag. SegStudio computes the
swept disk on the segment's bounding box only (:func:`brush_segment`) and
:meth:`LabelEditor.apply` changes and records just the changed pixels. The
naive baseline, common in labelling tools, draws each move into a
full-image mask (``np.zeros`` + ``cv2.line``), blends it with ``np.where`` over
the whole image and keeps a full copy of the map for undo (taken on the first
move of the drag). Both paint the same 200-move stroke of radius 15 on
4000 x 3000 and 12000 x 9000 maps; the script checks they paint about the same
pixels and prints one JSON object. Usage::

    python benchmarks/bench_edit.py [--moves N] [--radius R]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import platform
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

try:
    from segstudio.core.edit import LabelEditor
    from segstudio.core.labelset import UNLABELED
    from segstudio.core.tools import brush_segment
except ModuleNotFoundError:  # a source checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from segstudio.core.edit import LabelEditor
    from segstudio.core.labelset import UNLABELED
    from segstudio.core.tools import brush_segment

SIZES = ((3000, 4000), (9000, 12000))  # (height, width)
CLASS = 3


def stroke_points(shape: tuple[int, int], moves: int) -> list[tuple[float, float]]:
    """A wavy left-to-right drag through the middle of the image, ~7 px per move."""
    h, w = shape
    x0, y0 = w * 0.3, h * 0.5
    return [
        (x0 + 6.5 * i + 0.37 * (i % 3), y0 + 40.0 * math.sin(i / 9.0) + 0.21 * (i % 5))
        for i in range(moves + 1)
    ]


def make_labels(shape: tuple[int, int]) -> np.ndarray:
    """Half unlabeled, half class 1: the stroke crosses both."""
    labels = np.full(shape, UNLABELED, dtype=np.uint8)
    labels[:, shape[1] // 3 + 600 :] = 1
    return labels


def ours(
    labels: np.ndarray, pts: list[tuple[float, float]], radius: float
) -> tuple[list[float], LabelEditor]:
    editor = LabelEditor(labels)
    times = []
    editor.begin_step("Brush")
    for p0, p1 in itertools.pairwise(pts):
        start = time.perf_counter()
        placed = brush_segment(labels.shape, p0, p1, radius)
        if placed is not None:
            editor.apply(placed.y0, placed.x0, placed.mask, CLASS)
        times.append(time.perf_counter() - start)
    editor.end_step()
    return times, editor


def naive(
    labels: np.ndarray, pts: list[tuple[float, float]], radius: float
) -> tuple[list[float], np.ndarray]:
    times = []
    undo_copy = None
    thickness = 2 * round(radius) + 1
    for p0, p1 in itertools.pairwise(pts):
        start = time.perf_counter()
        if undo_copy is None:  # full-copy undo, taken when the drag starts
            undo_copy = labels.copy()
        mask = np.zeros(labels.shape, dtype=np.uint8)
        a = (round(p0[0]), round(p0[1]))
        b = (round(p1[0]), round(p1[1]))
        cv2.line(mask, a, b, 1, thickness=thickness)
        labels[...] = np.where(mask != 0, np.uint8(CLASS), labels)
        times.append(time.perf_counter() - start)
    assert undo_copy is not None
    return times, undo_copy


def stats_ms(times: list[float]) -> dict[str, float]:
    t = np.asarray(times) * 1e3
    return {
        "median_ms": round(float(np.median(t)), 4),
        "p95_ms": round(float(np.percentile(t, 95)), 4),
        "max_ms": round(float(t.max()), 4),
        "total_ms": round(float(t.sum()), 2),
    }


def run_size(shape: tuple[int, int], moves: int, radius: float) -> dict[str, Any]:
    pts = stroke_points(shape, moves)

    # Warm-up both paths on a few moves (imports, allocator, caches).
    ours(make_labels(shape), pts[:6], radius)
    naive(make_labels(shape), pts[:3], radius)

    labels = make_labels(shape)
    before = labels.copy()
    t_ours, editor = ours(labels, pts, radius)
    start = time.perf_counter()
    editor.undo()
    undo_ms = (time.perf_counter() - start) * 1e3
    if not np.array_equal(labels, before):
        raise SystemExit("benchmark self-check failed: undo did not restore the map")
    start = time.perf_counter()
    editor.redo()
    redo_ms = (time.perf_counter() - start) * 1e3
    ours_painted = labels == CLASS

    base = make_labels(shape)
    t_naive, undo_copy = naive(base, pts, radius)
    naive_painted = base == CLASS
    inter = int((ours_painted & naive_painted).sum())
    union = int((ours_painted | naive_painted).sum())
    iou = inter / max(1, union)
    if iou < 0.85:  # cv2's thick line is not exactly a swept disk
        raise SystemExit(f"benchmark self-check failed: strokes differ (IoU {iou:.3f})")

    o, n = stats_ms(t_ours), stats_ms(t_naive)
    return {
        "height": shape[0],
        "width": shape[1],
        "ours": o,
        "naive": n,
        "speedup_median": round(n["median_ms"] / o["median_ms"], 1),
        "speedup_p95": round(n["p95_ms"] / o["p95_ms"], 1),
        "painted_pixels": int(ours_painted.sum()),
        "stroke_iou_vs_naive": round(iou, 4),
        "undo_bytes": editor.history_bytes,
        "naive_undo_bytes": int(undo_copy.nbytes),
        "undo_bytes_ratio": round(undo_copy.nbytes / max(1, editor.history_bytes), 1),
        "undo_ms": round(undo_ms, 3),
        "redo_ms": round(redo_ms, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=200, help="mouse-moves per stroke")
    parser.add_argument("--radius", type=float, default=15.0, help="brush radius in pixels")
    args = parser.parse_args(argv)
    result = {
        "benchmark": "brush_drag",
        "per_move": "brush_segment + LabelEditor.apply vs np.zeros + cv2.line + np.where",
        "moves": args.moves,
        "radius": args.radius,
        "sizes": [run_size(s, args.moves, args.radius) for s in SIZES],
        "python": platform.python_version(),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "machine": platform.machine(),
    }
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
