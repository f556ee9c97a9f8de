"""The voc format: palette PNGs and the ImageSets lists."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from segstudio.core.labelset import preset
from tests.unit.io.datasets.conftest import make_project, run_export


def test_voc_palette_pngs(tmp_path: Path) -> None:
    voc = preset("voc")
    project, masks = make_project(tmp_path / "p", n=2, ls=voc)
    run_export(project, tmp_path / "out", format="voc")
    im = Image.open(tmp_path / "out" / "SegmentationClass" / "img0.png")
    assert im.mode == "P"
    pal = np.array(im.getpalette(), np.uint8).reshape(-1, 3)
    np.testing.assert_array_equal(pal[: voc.num_classes], voc.colors)
    assert tuple(pal[255]) == (224, 224, 192)
    np.testing.assert_array_equal(np.asarray(im), masks["img0.png"])
    assert (tmp_path / "out" / "JPEGImages" / "img0.jpg").is_file()
    sets = tmp_path / "out" / "ImageSets" / "Segmentation"
    assert {p.name for p in sets.iterdir()} == {"train.txt", "val.txt", "trainval.txt", "test.txt"}
    project.close()
