"""CamVid through import and export: the exported annotations equal the originals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.core.jobs import drive
from segstudio.core.labelset import LabelSet
from segstudio.io.datasets import ExportOptions, export_dataset, import_dataset
from segstudio.io.project import ImageStatus, Project

pytestmark = pytest.mark.camvid


def test_camvid_import_export_is_pixel_identical(camvid: Path, tmp_path: Path) -> None:
    frames = sorted(p.name for p in (camvid / "train").glob("*.png"))[:5]
    src = tmp_path / "camvid5"
    (src / "train").mkdir(parents=True)
    (src / "trainannot").mkdir()
    for name in frames:  # symlinks, never copies of the data set
        (src / "train" / name).symlink_to(camvid / "train" / name)
        (src / "trainannot" / name).symlink_to(camvid / "trainannot" / name)
    (src / "classes.json").symlink_to(camvid / "classes.json")

    (tmp_path / "proj").mkdir()
    with Project.open(tmp_path / "proj") as project:
        report = drive(import_dataset(project, src, "camvid", void=11))
        assert report.labels == 5 and report.images == 5
        assert project.labelset.same_classes(LabelSet.load(camvid / "classes.json"))
        assert [r.status for r in project.images()] == [ImageStatus.REVIEWED] * 5
        out = tmp_path / "export"
        options = ExportOptions(format="camvid", camvid_void=11, split=(1.0, 0.0, 0.0))
        exported = drive(export_dataset(project, out, options))
    assert exported.images == 5 and not exported.skipped
    for name in frames:
        original = np.asarray(Image.open(camvid / "trainannot" / name))
        written = np.asarray(Image.open(out / "trainannot" / name))
        assert written.dtype == np.uint8 and written.ndim == 2
        np.testing.assert_array_equal(written, original)
        assert (out / "train" / name).read_bytes() == (camvid / "train" / name).read_bytes()
    assert json.loads((out / "classes.json").read_text())["void_index"] == 11
    lines = (out / "train.txt").read_text().splitlines()
    assert lines == [f"train/{n} trainannot/{n}" for n in frames]
