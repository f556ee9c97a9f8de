"""The coco format: RLE masks per class or per instance, and clear errors for odd files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from segstudio.core.errors import DatasetError
from tests.unit.io.datasets.conftest import H, W, run_export, run_import


def test_coco_decodes_to_class_masks_and_instances(proj, tmp_path: Path) -> None:
    project, masks = proj
    run_export(project, tmp_path / "sem", format="coco", split=(1.0, 0.0, 0.0))
    doc = json.loads((tmp_path / "sem" / "annotations" / "instances_train.json").read_text())
    assert not (tmp_path / "sem" / "annotations" / "instances_val.json").exists()
    assert [c["id"] for c in doc["categories"]] == [1, 2, 3]
    img = next(i for i in doc["images"] if i["file_name"] == "img0.png")
    assert (img["width"], img["height"]) == (W, H)
    anns = [a for a in doc["annotations"] if a["image_id"] == img["id"]]
    assert len(anns) == 3
    for a in anns:
        assert isinstance(a["segmentation"]["counts"], str) and a["iscrowd"] == 0
        rle = dict(a["segmentation"], counts=a["segmentation"]["counts"].encode())
        decoded = mask_utils.decode(rle).astype(bool)
        np.testing.assert_array_equal(decoded, masks["img0.png"] == a["category_id"] - 1)
        assert a["area"] == decoded.sum()
    run_export(project, tmp_path / "inst", format="coco", split=(1.0, 0.0, 0.0), instances=True)
    doc = json.loads((tmp_path / "inst" / "annotations" / "instances_train.json").read_text())
    img = next(i for i in doc["images"] if i["file_name"] == "img0.png")
    cars = [a for a in doc["annotations"] if a["image_id"] == img["id"] and a["category_id"] == 3]
    assert len(cars) == 2  # the block in the corner and the square at (3, 3)
    assert sorted(a["bbox"][:2] for a in cars)[0] == [3.0, 3.0]


def test_odd_coco_files_give_clear_errors_not_tracebacks(proj, tmp_path: Path) -> None:
    project, masks = proj
    run_export(project, tmp_path / "coco", format="coco", split=(1.0, 0.0, 0.0))
    ann_file = tmp_path / "coco" / "annotations" / "instances_train.json"
    doc = json.loads(ann_file.read_text())
    # a box-only annotation (no mask) is skipped, not a crash
    doc["annotations"].append({**doc["annotations"][0], "id": 999, "segmentation": []})
    ann_file.write_text(json.dumps(doc))
    (tmp_path / "a").mkdir()
    _, report = run_import(tmp_path / "a", tmp_path / "coco", "coco")
    assert report.labels == len(masks)
    # a polygon of two points cannot be drawn: a DatasetError naming it
    doc["annotations"][-1]["segmentation"] = [[1.0, 1.0, 2.0, 2.0]]
    ann_file.write_text(json.dumps(doc))
    (tmp_path / "b").mkdir()
    with pytest.raises(DatasetError, match="annotation 999"):
        run_import(tmp_path / "b", tmp_path / "coco", "coco")
    ann_file.write_text("[]")
    (tmp_path / "c").mkdir()
    with pytest.raises(DatasetError, match="not a COCO JSON"):
        run_import(tmp_path / "c", tmp_path / "coco", "coco")
