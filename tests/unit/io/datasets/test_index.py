"""The index format: images/ + labels/ and a reproducible split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from segstudio.core.labelset import LabelSet
from tests.unit.io.datasets.conftest import LS, run_export


def test_index_layout_and_split_reproducible(proj, tmp_path: Path) -> None:
    project, masks = proj
    run_export(project, tmp_path / "a", format="index", split=(0.5, 0.5, 0.0), seed=3)
    run_export(project, tmp_path / "b", format="index", split=(0.5, 0.5, 0.0), seed=3)
    out = tmp_path / "a"
    for split in ("train", "val", "test"):
        assert (out / f"{split}.txt").read_text() == (tmp_path / "b" / f"{split}.txt").read_text()
    train = (out / "train.txt").read_text().split()
    val = (out / "val.txt").read_text().split()
    assert len(train) == 3 and len(val) == 3 and (out / "test.txt").read_text() == ""
    assert (out / "images" / "img0.png").read_bytes() == (project.folder / "img0.png").read_bytes()
    lab = Image.open(out / "labels" / "img0.png")
    assert lab.mode == "L"
    np.testing.assert_array_equal(np.asarray(lab), masks["img0.png"])
    assert LabelSet.load(out / "classes.json").same_classes(LS)
    report, _ = run_export(project, tmp_path / "c", format="index", split=(0.5, 0.5, 0.0), seed=4)
    assert report.splits == {"train": 3, "val": 3, "test": 0}
