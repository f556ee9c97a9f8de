"""The cityscapes format: official label ids for the Cityscapes label set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from segstudio.core.labelset import UNLABELED, preset
from segstudio.io.datasets import CITYSCAPES_LABEL_IDS
from tests.unit.io.datasets.conftest import H, W, make_project, run_export


def test_cityscapes_label_ids(tmp_path: Path) -> None:
    cs = preset("cityscapes")
    project, _ = make_project(tmp_path / "p", n=1, ls=cs)
    m = np.arange(H * W, dtype=np.int64).reshape(H, W) % 20
    m = np.where(m == 19, UNLABELED, m).astype(np.uint8)
    project.import_labels([("img0.png", m)])
    report, _ = run_export(project, tmp_path / "out", format="cityscapes", split=(1.0, 0.0, 0.0))
    gt = tmp_path / "out" / "gtFine" / "train" / "segstudio"
    ids = np.asarray(Image.open(gt / "img0_gtFine_labelIds.png"))
    lut = np.zeros(256, np.uint8)
    lut[:19] = CITYSCAPES_LABEL_IDS
    np.testing.assert_array_equal(ids, lut[m])
    assert ids[0, 0] == 7 and ids[0, 18] == 33 and ids[0, 19] == 0
    np.testing.assert_array_equal(np.asarray(Image.open(gt / "img0_gtFine_labelTrainIds.png")), m)
    assert (
        tmp_path / "out" / "leftImg8bit" / "train" / "segstudio" / "img0_leftImg8bit.png"
    ).is_file()
    assert not report.warnings
    project.close()
