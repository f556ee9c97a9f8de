"""Shared set-up of the dataset tests: a small three-class project and its masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.core.jobs import drive
from segstudio.core.labelset import UNLABELED, LabelClass, LabelSet
from segstudio.io.datasets import ExportOptions, export_dataset, import_dataset
from segstudio.io.project import Project

LS = LabelSet(
    "three",
    (LabelClass("Sky", (128, 128, 128)), LabelClass("Road", (128, 64, 128)),
     LabelClass("Car", (64, 0, 128))),
)  # fmt: skip
H, W = 24, 32


def make_mask(seed: int, num_classes: int = 3) -> np.ndarray:
    """Three class regions, a second component of class 2, and 20 unlabeled pixels."""
    rng = np.random.default_rng(seed)
    m = np.full((H, W), 0, np.uint8)
    m[: H // 2] = 1
    m[H // 2 :, W // 2 :] = 2 % num_classes
    m[3:6, 3:6] = 2 % num_classes  # a second component of class 2
    m[rng.integers(0, H, 20), rng.integers(0, W, 20)] = UNLABELED
    return m


def make_image(seed: int) -> np.ndarray:
    """Random RGB noise, H x W."""
    return np.random.default_rng(100 + seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


def make_project(
    folder: Path, n: int = 6, ls: LabelSet = LS
) -> tuple[Project, dict[str, np.ndarray]]:
    """A project of ``n`` images, each with reviewed labels; returns it and the masks."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(make_image(i)).save(folder / f"img{i}.png")
    project = Project.open(folder)
    project.scan()
    project.set_labelset(ls)
    masks = {f"img{i}.png": make_mask(i, ls.num_classes) for i in range(n)}
    project.import_labels(list(masks.items()), user="test")
    return project, masks


@pytest.fixture
def proj(tmp_path: Path) -> tuple[Project, dict[str, np.ndarray]]:
    """The six-image project of :func:`make_project`, closed afterwards."""
    project, masks = make_project(tmp_path / "proj")
    yield project, masks
    project.close()


def run_export(project: Project, out: Path, **kw: object):
    """Export with ``ExportOptions(**kw)``; returns the report and every progress step."""
    gen = export_dataset(project, out, ExportOptions(**kw))
    steps = []
    while True:
        try:
            steps.append(next(gen))
        except StopIteration as stop:
            return stop.value, steps


def run_import(folder: Path, source: Path, fmt: str, **kw: object):
    """Open (or make) the project of ``folder`` and import into it; the caller closes it."""
    project = Project.open(folder)
    report = drive(import_dataset(project, source, fmt, **kw))
    return project, report


def masks_by_stem(project: Project) -> dict[str, np.ndarray]:
    """The stored labels of every image of the project, by file stem."""
    return {Path(r.name).stem: project.load_labels(r.name) for r in project.images()}
