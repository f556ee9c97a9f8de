"""The cvat format: colour masks by labelmap.txt, background as unlabeled."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from segstudio.core.labelset import UNLABELED
from tests.unit.io.datasets.conftest import H, W, make_image, run_import


def test_cvat_import(tmp_path: Path) -> None:
    src = tmp_path / "cvat"
    (src / "SegmentationClass").mkdir(parents=True)
    (src / "JPEGImages").mkdir()
    (src / "labelmap.txt").write_text(
        "# label:color_rgb:parts:actions\nbackground:0,0,0::\ncar:250,50,83::\nroad:0,0,255::\n"
    )
    Image.fromarray(make_image(1)).save(src / "JPEGImages" / "f1.png")
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[:5] = (250, 50, 83)
    rgb[-5:] = (0, 0, 255)
    Image.fromarray(rgb).save(src / "SegmentationClass" / "f1.png")
    (tmp_path / "p").mkdir()
    project, rep = run_import(tmp_path / "p", src, "cvat")
    assert rep.classes.names == ("car", "road") and project.labelset.names == ("car", "road")
    m = project.load_labels("f1.png")
    assert (m[:5] == 0).all() and (m[-5:] == 1).all() and (m[5:-5] == UNLABELED).all()
    project.close()
