"""The import driver: all or nothing, classes mapped by name, labels never replaced
silently; and the project transaction it relies on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.core.errors import DatasetError
from segstudio.core.jobs import drive
from segstudio.core.labelset import LabelClass, LabelSet
from segstudio.io.datasets import import_dataset
from segstudio.io.project import Project
from tests.unit.io.datasets.conftest import LS, H, W, make_image, make_mask, run_export


def _snapshot(project: Project) -> tuple:
    return (
        sorted(p.name for p in project.folder.iterdir()),
        [(r.name, r.status, r.has_labels) for r in project.images()],
        sorted(p.name for p in (project.state_dir / "labels").iterdir()),
    )


def test_import_unknown_colours_changes_nothing(proj, tmp_path: Path) -> None:
    project, _ = proj
    src = tmp_path / "src"
    (src / "images").mkdir(parents=True)
    (src / "labels").mkdir()
    for i in range(2):
        Image.fromarray(make_image(20 + i)).save(src / "images" / f"new{i}.png")
        rgb = np.zeros((H, W, 3), np.uint8)
        rgb[:] = (128, 128, 128)
        rgb[:4, :5] = (1, 2, 3)  # 20 px
        if i:
            rgb[-1, :3] = (9, 9, 9)  # 3 px
        Image.fromarray(rgb).save(src / "labels" / f"new{i}.png")
    pal = tmp_path / "label_colors.txt"
    pal.write_text("128 128 128\tSky\n128 64 128\tRoad\n64 0 128\tCar\n0 0 0\tVoid\n")
    before = _snapshot(project)
    with pytest.raises(DatasetError) as err:
        drive(import_dataset(project, src, "rgb", palette=pal))
    msg = str(err.value)
    assert "(1, 2, 3) x 40" in msg and "(9, 9, 9) x 3" in msg and "2 file(s)" in msg
    assert _snapshot(project) == before


def test_import_clash_with_different_image(proj, tmp_path: Path) -> None:
    project, _ = proj
    src = tmp_path / "src"
    (src / "images").mkdir(parents=True)
    (src / "labels").mkdir()
    Image.fromarray(make_image(50)).save(src / "images" / "img0.png")  # differs from the project's
    Image.fromarray(make_mask(0)).save(src / "labels" / "img0.png")
    LS.save(src / "classes.json")
    before = _snapshot(project)
    with pytest.raises(DatasetError, match=r"different content: img0\.png"):
        drive(import_dataset(project, src, "index"))
    assert _snapshot(project) == before


def test_import_classes_mapped_by_name(proj, tmp_path: Path) -> None:
    project, _ = proj
    reordered = LabelSet("other", tuple(reversed(LS.classes)))
    src = tmp_path / "src"
    (src / "images").mkdir(parents=True)
    (src / "labels").mkdir()
    Image.fromarray(make_image(60)).save(src / "images" / "new.png")
    m = np.zeros((H, W), np.uint8)  # "Car" in the dataset's numbering
    Image.fromarray(m).save(src / "labels" / "new.png")
    reordered.save(src / "classes.json")
    rep = drive(import_dataset(project, src, "index"))
    assert rep.images == 1 and rep.labels == 1
    assert (project.load_labels("new.png") == LS.index_of("Car")).all()
    LabelSet("x", (LabelClass("Tree", (1, 1, 1)),)).save(src / "classes.json")
    with pytest.raises(DatasetError, match=r"not in the project.s label set.*Tree"):
        drive(import_dataset(project, src, "index"))


def test_import_refuses_to_replace_labels_unless_asked(proj, tmp_path: Path) -> None:
    project, masks = proj
    run_export(project, tmp_path / "out", format="index")
    # the project already holds labels for every image: a plain import is refused
    before = {n: project.load_labels(n) for n in masks}
    with pytest.raises(DatasetError, match="already hold labels"):
        drive(import_dataset(project, tmp_path / "out", "index"))
    for name, labels in before.items():
        np.testing.assert_array_equal(project.load_labels(name), labels)
    report = drive(import_dataset(project, tmp_path / "out", "index", replace=True))
    assert report.labels == len(masks)
    assert any("replaced" in w for w in report.warnings)


def test_import_labels_is_atomic(proj) -> None:
    project, masks = proj
    labels_before = sorted(p.name for p in (project.state_dir / "labels").iterdir())
    bad = np.full((H, W), 7, np.uint8)  # no class 7 in a 3-class set
    with pytest.raises(Exception, match="not classes"):
        project.import_labels([("img0.png", np.zeros((H, W), np.uint8)), ("img1.png", bad)])
    assert sorted(p.name for p in (project.state_dir / "labels").iterdir()) == labels_before
    np.testing.assert_array_equal(project.load_labels("img0.png"), masks["img0.png"])


def test_import_labels_crash_leftovers_are_swept(proj) -> None:
    project, masks = proj
    folder = project.folder
    project.close()
    # What a crash between writing the files and the commit leaves behind.
    leftover = folder / ".segstudio" / "labels" / "img0.png.v0.import-deadbeef.png"
    Image.fromarray(np.zeros((H, W), np.uint8)).save(leftover)
    with Project.open(folder) as again:
        assert not leftover.exists()
        np.testing.assert_array_equal(again.load_labels("img0.png"), masks["img0.png"])
