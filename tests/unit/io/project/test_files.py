"""Label and prediction files: round trips, validation, and a label save interrupted by a crash."""

from __future__ import annotations

import os

import numpy as np
import pytest

from segstudio.io.images import write_label_map
from segstudio.io.project import ImageStatus, Project
from tests.unit.io.project.conftest import RNG, random_labels, stored_files


def test_labels_round_trip(proj: Project) -> None:
    assert proj.load_labels("a.png") is None
    labels = random_labels(31, 17)
    proj.save_labels("a.png", labels, user="ann")
    got = proj.load_labels("a.png")
    assert got is not None and got.dtype == np.uint8
    np.testing.assert_array_equal(got, labels)
    rec = proj.record("a.png")
    assert rec.has_labels and not rec.has_prediction
    assert rec.status is ImageStatus.IN_PROGRESS
    assert rec.updated_by == "ann"
    # Overwriting keeps one file.
    proj.save_labels("a.png", np.zeros((31, 17), np.uint8))
    np.testing.assert_array_equal(proj.load_labels("a.png"), 0)
    assert len(os.listdir(proj.state_dir / "labels")) == 1


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.zeros((4, 4), np.int32), "dtype uint8"),
        (np.zeros((4, 4, 3), np.uint8), "2-D"),
        (np.zeros((0, 4), np.uint8), "empty"),
        ([[0, 1]], "numpy array"),
    ],
)
def test_save_labels_validates(proj: Project, bad: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        proj.save_labels("a.png", bad)  # type: ignore[arg-type]
    assert not proj.record("a.png").has_labels


def test_prediction_round_trip(proj: Project) -> None:
    assert proj.load_prediction("a.png") is None
    labels = random_labels()
    conf = RNG.random(labels.shape)
    proj.save_prediction("a.png", labels, conf, model="segnet")
    got = proj.load_prediction("a.png")
    assert got is not None
    np.testing.assert_array_equal(got[0], labels)
    expected = np.rint(conf * 255).astype(np.uint8)
    np.testing.assert_array_equal(got[1], expected)
    rec = proj.record("a.png")
    assert rec.has_prediction and not rec.has_labels
    assert rec.confidence == pytest.approx(expected.mean() / 255)
    assert rec.updated_at is None  # no person touched it
    # uint8 confidence is stored as is.
    conf8 = np.full(labels.shape, 51, np.uint8)
    proj.save_prediction("a.png", labels, conf8, model="segnet")
    assert proj.record("a.png").confidence == pytest.approx(0.2)


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        (np.full((12, 16), 1.5), "0..1"),
        (np.full((12, 16), np.nan), "0..1"),
        (np.full((12, 15), 0.5), "shape"),
        (np.full((12, 16), 3, np.int64), "floats"),
    ],
)
def test_prediction_validates_confidence(proj: Project, conf: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        proj.save_prediction("a.png", random_labels(), conf, model="m")
    assert not proj.record("a.png").has_prediction


def test_interrupted_label_save_is_adopted(proj: Project) -> None:
    # A kill between writing the PNG and updating the row leaves a file in the
    # current numbering that no row names: the next open keeps it.
    labels = random_labels()
    write_label_map(proj.state_dir / "labels" / "c.tif.v0.png", labels)
    write_label_map(proj.state_dir / "labels" / "c.tif.v7.png", labels)  # stale numbering
    (proj.state_dir / "predictions" / ".b.jpg.v0.png.1234.tmp.png").write_bytes(b"x")
    proj.close()
    with Project.open(proj.folder) as p:
        rec = p.record("c.tif")
        assert rec.has_labels and rec.status is ImageStatus.IN_PROGRESS
        np.testing.assert_array_equal(p.load_labels("c.tif"), labels)
        assert p.history("c.tif")[-1]["action"] == "recovered_labels"
        assert stored_files(p) == {"labels/c.tif.v0.png"}
