"""The camvid format: the void value, the colour labels and label_colors.txt."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from tests.unit.io.datasets.conftest import run_export, run_import


def test_camvid_void_and_colour(proj, tmp_path: Path) -> None:
    project, masks = proj
    run_export(project, tmp_path / "out", format="camvid", camvid_void=11, camvid_color=True,
            split=(1.0, 0.0, 0.0))  # fmt: skip
    out = tmp_path / "out"
    ann = np.asarray(Image.open(out / "trainannot" / "img0.png"))
    np.testing.assert_array_equal(ann, np.where(masks["img0.png"] == 255, 11, masks["img0.png"]))
    assert (out / "trainannot_L" / "img0_L.png").is_file()
    assert (out / "label_colors.txt").read_text().splitlines()[-1] == "0 0 0\tVoid"
    first = (out / "train.txt").read_text().splitlines()[0]
    assert first == "train/img0.png trainannot/img0.png"
    assert json.loads((out / "classes.json").read_text())["void_index"] == 11
    (tmp_path / "fresh").mkdir()
    fresh, _ = run_import(tmp_path / "fresh", out, "camvid")  # void_index from classes.json
    np.testing.assert_array_equal(fresh.load_labels("img0.png"), masks["img0.png"])
    fresh.close()
