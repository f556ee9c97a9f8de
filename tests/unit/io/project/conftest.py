"""Shared fixtures and helpers of the project-store tests.

A folder of images, two label sets and a class lookup table between them, and
what a project stores on disk.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from segstudio.core.labelset import LabelClass, LabelSet
from segstudio.io.project import Project

OLD = LabelSet(
    "old",
    (
        LabelClass("road", (128, 64, 128)),
        LabelClass("car", (64, 0, 128)),
        LabelClass("sky", (128, 128, 128)),
    ),
)

# "car" merges into "road", and the order flips: sky = 0, road = 1.
NEW = LabelSet("new", (LabelClass("sky", (128, 128, 128)), LabelClass("road", (128, 64, 128))))

LUT = np.arange(256, dtype=np.uint8)
LUT[[0, 1, 2]] = [1, 1, 0]

RNG = np.random.default_rng(7)


@pytest.fixture(autouse=True)
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep the recent-projects list out of the real home folder."""
    folder = tmp_path / "config"
    monkeypatch.setenv("SEGSTUDIO_CONFIG_DIR", str(folder))
    return folder


def make_folder(root: Path, names: list[str]) -> Path:
    """A folder with empty files of those names (scan never reads contents)."""
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        (root / name).touch()
    return root


def random_labels(h: int = 12, w: int = 16, n: int = 3) -> np.ndarray:
    labels = RNG.integers(0, n, (h, w), dtype=np.uint8)
    labels[0, :4] = 255
    return labels


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return make_folder(tmp_path / "images", ["a.png", "b.jpg", "c.tif"])


@pytest.fixture
def proj(folder: Path) -> Iterator[Project]:
    p = Project.open(folder)
    p.scan()
    yield p
    p.close()


def stored_files(project: Project) -> set[str]:
    """Files in labels/ and predictions/ (not labels/aside/: kept, never referenced)."""
    return {
        f"{sub}/{name}"
        for sub in ("labels", "predictions")
        for name in os.listdir(project.state_dir / sub)
        if (project.state_dir / sub / name).is_file()
    }


def referenced_files(project: Project) -> set[str]:
    with sqlite3.connect(project.state_dir / "project.sqlite") as db:
        rows = db.execute("SELECT label_file, pred_file, conf_file FROM images").fetchall()
    out = set()
    for label, pred, conf in rows:
        out |= {f"labels/{label}"} if label else set()
        out |= {f"predictions/{f}" for f in (pred, conf) if f}
    return out


def populate(project: Project) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Labels and predictions (in OLD numbering) for every image; returns them."""
    project.set_labelset(OLD)
    data = {}
    for name in ("a.png", "b.jpg", "c.tif"):
        labels, pred = random_labels(), random_labels()
        conf = RNG.integers(0, 256, pred.shape, dtype=np.uint8)
        project.save_labels(name, labels)
        project.save_prediction(name, pred, conf, model="m")
        data[name] = (labels, pred, conf)
    return data


def assert_all_old(project: Project, data: dict) -> None:
    assert project.labelset == OLD
    assert project.labelset_version == 0
    for name, (labels, pred, conf) in data.items():
        np.testing.assert_array_equal(project.load_labels(name), labels)
        got = project.load_prediction(name)
        assert got is not None
        np.testing.assert_array_equal(got[0], pred)
        np.testing.assert_array_equal(got[1], conf)


def assert_all_new(project: Project, data: dict) -> None:
    assert project.labelset == NEW
    assert project.labelset_version == 1
    for name, (labels, pred, conf) in data.items():
        np.testing.assert_array_equal(project.load_labels(name), LUT[labels])
        got = project.load_prediction(name)
        assert got is not None
        np.testing.assert_array_equal(got[0], LUT[pred])
        np.testing.assert_array_equal(got[1], conf)


def assert_tidy(project: Project) -> None:
    """No file without a row, no row without a file, settings.json agrees with the DB."""
    assert stored_files(project) == referenced_files(project)
    on_disk = json.loads((project.state_dir / "settings.json").read_text())
    assert LabelSet.from_dict(on_disk["labelset"]) == project.labelset


def write_model(path: Path, *, created: str, classes: LabelSet = OLD, **provenance) -> Path:
    """A model file as far as the registry reads it: a safetensors header, no tensors."""
    doc = {
        "format": "segstudio.model",
        "version": 1,
        "arch": {"name": "segnet", "params": {}},
        "labelset": classes.to_dict(),
        "provenance": {"created": created, **provenance},
        "metrics": {"mean_iou": 0.5},
    }
    header = json.dumps({"__metadata__": {"segstudio": json.dumps(doc)}}).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(len(header).to_bytes(8, "little") + header)
    return path
