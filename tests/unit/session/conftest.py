"""Shared fixtures of the session tests: a project of one blank 60 x 40 image."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.core.labelset import LabelClass, LabelSet
from segstudio.io.project import Project

LS = LabelSet("t", (LabelClass("a", (10, 10, 10)), LabelClass("b", (200, 0, 0))))


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    """``one.png`` (black, 60 x 40) in a project with the classes ``LS``."""
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(tmp_path / "one.png")
    project = Project.open(tmp_path)
    project.scan()
    project.set_labelset(LS)
    yield project
    project.close()
