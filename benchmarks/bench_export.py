"""Benchmark dataset export: every format against a plain PIL save loop.

Builds a synthetic project of N images of 480 x 360 (one image and one label map
written once, the image file copied N times under different names, then
:meth:`Project.scan` and one :meth:`Project.import_labels`), exports it in each
format, and prints one JSON object: seconds, pixels per second, and the ratio to
a baseline measured in the same run (``Image.fromarray(labels).save(png)`` for
each image, the least any exporter must do).

Usage: ``python benchmarks/bench_export.py [--n 1000]``
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from segstudio.core.jobs import drive
from segstudio.core.labelset import preset
from segstudio.io.datasets import FORMATS, ExportOptions, export_dataset
from segstudio.io.project import Project

W, H = 480, 360


def _synthetic(folder: Path, n: int) -> tuple[Project, np.ndarray]:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    labels = np.zeros((H, W), np.uint8)
    for k in range(11):  # bands of classes with a few blobs, some unlabeled
        labels[k * H // 11 : (k + 1) * H // 11] = k
    labels[rng.integers(0, H, 2000), rng.integers(0, W, 2000)] = 255
    first = folder / "img00000.png"
    Image.fromarray(rgb).save(first)
    for i in range(1, n):
        shutil.copyfile(first, folder / f"img{i:05d}.png")
    project = Project.open(folder)
    project.scan()
    project.set_labelset(preset("camvid11"))
    project.import_labels([(f"img{i:05d}.png", labels) for i in range(n)], user="bench")
    return project, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="number of images (default 1000)")
    args = parser.parse_args()
    n = args.n
    pixels = n * W * H
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "proj").mkdir()
        t0 = time.perf_counter()
        project, labels = _synthetic(root / "proj", n)
        setup = time.perf_counter() - t0

        base = root / "baseline"
        base.mkdir()
        t0 = time.perf_counter()
        for i in range(n):
            Image.fromarray(labels).save(base / f"img{i:05d}.png")
        baseline = time.perf_counter() - t0

        results: dict[str, dict[str, float]] = {}
        for fmt in FORMATS:
            t0 = time.perf_counter()
            drive(export_dataset(project, root / f"out_{fmt}", ExportOptions(format=fmt)))
            s = time.perf_counter() - t0
            results[fmt] = {
                "seconds": round(s, 3),
                "pixels_per_s": round(pixels / s),
                "ratio_to_baseline": round(s / baseline, 2),
            }
            shutil.rmtree(root / f"out_{fmt}")
        project.close()
    print(
        json.dumps(
            {
                "benchmark": "export",
                "images": n,
                "size": [W, H],
                "setup_seconds": round(setup, 3),
                "baseline_pil_save_seconds": round(baseline, 3),
                "baseline_pixels_per_s": round(pixels / baseline),
                "formats": results,
            }
        )
    )


if __name__ == "__main__":
    main()
