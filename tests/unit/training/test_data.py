"""Training data: folders, dataset layouts, projects (sparse labels, corrected pixels),
the validation split and the class weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.core.errors import TrainingError
from segstudio.core.labelset import UNLABELED
from segstudio.io.project import Project
from segstudio.training.data import (
    Sample,
    TrainingData,
    from_folder,
    from_project,
    hash_split,
    load_source,
    median_frequency_weights,
)
from tests.unit.training.toy import SHAPES, SIZE, shape_image


def test_hash_split_is_stable_when_images_are_added() -> None:
    names = [f"frame{i:04d}.png" for i in range(200)]
    val = hash_split(names, 0.15)
    assert 15 <= len(val) <= 45
    more = hash_split([*names, *(f"new{i}.png" for i in range(100))], 0.15)
    assert val == more & set(names)
    assert len(hash_split(["a.png", "b.png"], 0.15)) == 1
    assert hash_split(["a.png"], 0.15) == set()
    assert hash_split(names, 0.15, seed=1) != val


def test_from_folder_pairs_by_stem_and_splits(shapes: Path) -> None:
    d = from_folder(shapes)
    assert len(d.train) + len(d.val) == 12 and d.val
    assert not {s.name for s in d.train} & {s.name for s in d.val}
    rgb, labels, weights = d.train[0].load()
    assert rgb.shape == (SIZE, SIZE, 3) and labels.dtype == np.uint8 and weights is None
    assert d.labelset.same_classes(SHAPES)
    assert f"{len(d.train)} training and {len(d.val)} validation" in d.describe()
    assert load_source(shapes).train[0].name == d.train[0].name


def test_from_folder_camvid_layout_with_void(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    for split in ("train", "val"):
        (tmp_path / split).mkdir()
        (tmp_path / f"{split}annot").mkdir()
        for i in range(2):
            rgb, labels = shape_image(rng)
            labels[:4] = 3  # the void value
            Image.fromarray(rgb).save(tmp_path / split / f"{split}{i}.png")
            Image.fromarray(labels).save(tmp_path / f"{split}annot" / f"{split}{i}.png")
    doc = SHAPES.to_dict()
    camvid_style = {"name": "shapes", "void_index": 3, "classes": doc["classes"]}
    (tmp_path / "classes.json").write_text(json.dumps(camvid_style))
    d = from_folder(tmp_path)
    assert [s.name for s in d.train] == ["train0.png", "train1.png"]
    assert [s.name for s in d.val] == ["val0.png", "val1.png"]
    _, labels, _ = d.val[0].load()
    assert (labels[:4] == UNLABELED).all() and labels.max() == UNLABELED


def test_from_folder_reports_mismatches(tmp_path: Path, shapes: Path) -> None:
    root = tmp_path / "broken"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    SHAPES.save(root / "classes.json")
    for name in ("a", "b", "c"):
        (root / "images" / f"{name}.png").write_bytes(
            (shapes / "images" / "img00.png").read_bytes()
        )
    (root / "labels" / "a.png").write_bytes((shapes / "labels" / "img00.png").read_bytes())
    with pytest.raises(TrainingError, match=r"2 image\(s\) .* no label map .*b\.png, c\.png"):
        from_folder(root)
    with pytest.raises(TrainingError, match="not a dataset folder"):
        from_folder(tmp_path)
    (root / "classes.json").unlink()
    with pytest.raises(TrainingError, match=r"no classes\.json"):
        from_folder(root)


def _project(tmp_path: Path, n: int = 5) -> Path:
    folder = tmp_path / "proj"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for i in range(n):
        rgb, _ = shape_image(rng)
        Image.fromarray(rgb).save(folder / f"p{i}.png")
    with Project.open(folder) as p:
        p.scan()
        p.set_labelset(SHAPES)
    return folder


def test_from_project_snapshot_sparse_labels_and_corrected_weights(tmp_path: Path) -> None:
    folder = _project(tmp_path)
    with Project.open(folder) as p:
        with pytest.raises(TrainingError, match="paint or import labels first"):
            from_project(p)
        sparse = np.full((SIZE, SIZE), UNLABELED, np.uint8)
        sparse[10:20, 10:20] = 1
        sparse[40:50, 40:50] = 0
        p.save_labels("p0.png", sparse)
        full = np.zeros((SIZE, SIZE), np.uint8)
        full[:, 32:] = 2
        p.save_labels("p1.png", full)
        pred = np.zeros((SIZE, SIZE), np.uint8)  # the model said class 0 everywhere
        p.save_prediction("p1.png", pred, np.ones((SIZE, SIZE), np.float32), model="m")
        p.save_labels("p2.png", np.full((SIZE, SIZE), UNLABELED, np.uint8))  # nothing painted
        p.save_prediction("p3.png", pred, np.ones((SIZE, SIZE), np.float32), model="m")
        d = from_project(p, corrected_weight=3.0, val_fraction=0.0)
        assert sorted(s.name for s in d.train) == ["p0.png", "p1.png"] and not d.val
        by_name = {s.name: s for s in d.train}
        assert by_name["p0.png"].weight_map is None  # no prediction to correct
        w = by_name["p1.png"].weight_map
        assert w is not None and w.dtype == np.float16
        assert (w[:, 32:] == 3.0).all() and (w[:, :32] == 1.0).all()
        # the snapshot does not see later edits
        p.save_labels("p1.png", np.zeros((SIZE, SIZE), np.uint8))
        assert (by_name["p1.png"].load_labels()[:, 32:] == 2).all()
        assert from_project(p, corrected_weight=1.0).train[0].weight_map is None
        d2 = from_project(p, val_names=["p1.png", "p4.png"])
        assert [s.name for s in d2.val] == ["p1.png"]
    assert load_source(folder).labelset.same_classes(SHAPES)


def test_median_frequency_weights() -> None:
    a = np.zeros((4, 4), np.uint8)
    a[0, :2] = 1  # image 1: 14 x class 0, 2 x class 1
    b = np.full((4, 4), UNLABELED, np.uint8)
    b[:2] = 0  # image 2: 8 x class 0, the rest unlabeled
    d = TrainingData(
        (Sample("a", Path("a.png"), labels=a), Sample("b", Path("b.png"), labels=b)),
        (),
        SHAPES,
        "mem",
    )
    w = median_frequency_weights(d, 3)
    f0, f1 = 22 / 24, 2 / 16
    med = np.median([f0, f1])
    np.testing.assert_allclose(w, [med / f0, med / f1, 1.0], rtol=1e-6)


def test_an_index_export_trains_on_its_own_split(shapes: Path, tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "exported"
    shutil.copytree(shapes, root)
    (root / "train.txt").write_text("".join(f"img{i:02d}\n" for i in range(6)))
    (root / "val.txt").write_text("img06\nimg07\n")
    (root / "test.txt").write_text("".join(f"img{i:02d}\n" for i in range(8, 12)))
    data = from_folder(root)
    assert sorted(Path(s.name).stem for s in data.train) == [f"img{i:02d}" for i in range(6)]
    assert sorted(Path(s.name).stem for s in data.val) == ["img06", "img07"]
