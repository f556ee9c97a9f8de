"""The rgb format: colour masks read with a CamVid label_colors.txt."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from segstudio.core.labelset import preset
from tests.unit.io.datasets.conftest import make_image, make_mask, run_import


def test_rgb_import_with_camvid_label_colors(tmp_path: Path) -> None:
    camvid = preset("camvid11")
    src = tmp_path / "src"
    (src / "train").mkdir(parents=True)
    (src / "trainannot").mkdir()
    masks = {}
    for i in range(2):
        m = make_mask(i, camvid.num_classes)
        m[0, :11] = np.arange(11)
        masks[f"f{i}.png"] = m
        Image.fromarray(make_image(i)).save(src / "train" / f"f{i}.png")
        from segstudio.core.convert import index_to_rgb

        Image.fromarray(index_to_rgb(m, camvid)).save(src / "trainannot" / f"f{i}.png")
    lines = [f"{c.color[0]} {c.color[1]} {c.color[2]}\t{c.name}" for c in camvid.classes]
    (tmp_path / "label_colors.txt").write_text("\n".join([*lines, "0 0 0\tVoid"]) + "\n")
    (tmp_path / "p").mkdir()
    project, rep = run_import(tmp_path / "p", src, "rgb", palette=tmp_path / "label_colors.txt")
    assert rep.labels == 2 and project.labelset.same_classes(camvid)
    for name, m in masks.items():
        np.testing.assert_array_equal(project.load_labels(name), m)
    project.close()
