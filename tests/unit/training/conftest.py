"""Fixtures of the training tests: the toy dataset on disk and as TrainingData."""

from __future__ import annotations

from pathlib import Path

import pytest

from segstudio.training.data import TrainingData, from_folder
from tests.unit.training.toy import SHAPES, write_dataset


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The toy dataset folder: 12 images."""
    return write_dataset(tmp_path_factory.mktemp("shapes"))


@pytest.fixture(scope="module")
def data(shapes: Path) -> TrainingData:
    """9 training and 3 validation images, named in order (not hash-split)."""
    samples = from_folder(shapes, val_fraction=0.0).train
    return TrainingData(samples[:9], samples[9:], SHAPES, str(shapes))
