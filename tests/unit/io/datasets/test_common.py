"""What the drivers and formats share: shortlists, upright image copies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from segstudio.io.datasets.common import shortlist
from segstudio.io.project import Project
from tests.unit.io.datasets.conftest import LS, run_export


def test_exif_rotated_images_are_exported_upright(tmp_path: Path) -> None:
    folder = tmp_path / "phone"
    folder.mkdir()
    raw = np.zeros((20, 40, 3), np.uint8)  # stored landscape...
    raw[:, :10] = 255
    im = Image.fromarray(raw)
    exif = im.getexif()
    exif[0x0112] = 6  # ...shown rotated: 40 high, 20 wide
    im.save(folder / "p.jpg", exif=exif.tobytes(), quality=95)
    project = Project.open(folder)
    project.scan()
    project.set_labelset(LS)
    project.import_labels([("p.jpg", np.zeros((40, 20), np.uint8))])
    run_export(project, tmp_path / "out", format="index")
    out = Image.open(tmp_path / "out" / "images" / "p.jpg")
    assert out.size == (20, 40)  # upright, the mask's shape
    assert int(out.getexif().get(0x0112, 1)) == 1
    project.close()


def test_shortlist_says_how_many_more() -> None:
    assert shortlist(["a", "b"]) == "a; b"
    assert shortlist([str(i) for i in range(5)], limit=3) == "0; 1; 2; and 2 more"
