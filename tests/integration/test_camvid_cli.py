"""End to end on real CamVid frames: model new -> predict -> eval (skipped without the data)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.cli import main
from segstudio.core.labelset import LabelSet, preset
from segstudio.io.images import read_image, read_label_map

N_IMAGES = 4


@pytest.fixture
def subset(camvid: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A few val frames and their labels, linked (not copied) into a temporary folder."""
    images, labels = tmp_path / "val", tmp_path / "valannot"
    images.mkdir()
    labels.mkdir()
    for src in sorted((camvid / "val").iterdir())[:N_IMAGES]:
        (images / src.name).symlink_to(src)
        (labels / src.name).symlink_to(camvid / "valannot" / src.name)
    return images, labels


def test_dataset_classes_file_is_the_camvid11_preset(camvid: Path) -> None:
    assert LabelSet.load(camvid / "classes.json").same_classes(preset("camvid11"))


def test_camvid_frames_and_labels_read(subset: tuple[Path, Path]) -> None:
    images, labels = subset
    for img in images.iterdir():
        loaded = read_image(img)
        assert loaded.rgb.shape == (360, 480, 3)
        target = read_label_map(labels / img.name)
        assert target.shape == (360, 480)
        assert target.max() <= 11


def test_model_new_predict_eval(
    camvid: Path, subset: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images, labels = subset
    model = tmp_path / "segnet.safetensors"
    code = main(["model", "new", "--arch", "segnet", "--width", "0.25",
                 "--classes", str(camvid / "classes.json"), "--out", str(model)])  # fmt: skip
    assert code == 0
    out = tmp_path / "pred"
    assert main(["predict", str(images), "--model", str(model), "--out", str(out)]) == 0
    for img in images.iterdir():
        pred = np.asarray(Image.open(out / img.name))
        assert pred.shape == (360, 480) and pred.max() < 11
        assert (out / f"{img.stem}_color.png").is_file()
    capsys.readouterr()
    code = main(["eval", "--model", str(model), "--images", str(images),
                 "--labels", str(labels), "--void", "11", "--json"])  # fmt: skip
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["images"] == N_IMAGES
    assert set(result) >= {"pixel_accuracy", "mean_accuracy", "mean_iou", "fw_iou"}
    # void pixels are ignored: the pixel count is below the full frame count
    assert 0 < result["num_pixels"] < N_IMAGES * 360 * 480
