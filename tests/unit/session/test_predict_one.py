"""session/models.py predict_one: the caller's pixels, and a cancel that lands after a step
nothing can interrupt (loading the model, reading the file)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import segstudio.session.models as models
from segstudio.core.labelset import preset
from segstudio.io.project import Project
from segstudio.model.arch import ArchSpec
from segstudio.model.files import new_model, save_model
from segstudio.session.models import ModelService, predict_one

TINY = ArchSpec("segnet_basic", {"width": 0.125, "depth": 2})


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    folder = tmp_path / "p"
    folder.mkdir()
    Image.fromarray(np.full((40, 60, 3), 90, np.uint8)).save(folder / "one.png")
    project = Project.open(folder)
    project.scan()
    project.set_labelset(preset("camvid11"))
    yield project
    project.close()


@pytest.fixture
def service(tmp_path: Path) -> ModelService:
    service = ModelService()
    service.set_model(save_model(tmp_path / "m.safetensors", new_model(TINY, preset("camvid11"))))
    return service


def test_the_callers_pixels_are_predicted_and_the_file_is_not_read(
    project: Project, service: ModelService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(models, "read_image", lambda _p: pytest.fail("the file was read"))
    rgb = np.full((40, 60, 3), 90, np.uint8)
    result = predict_one(service, project, "one.png", rgb=rgb)
    assert result is not None and result[1].shape == (40, 60)
    assert project.record("one.png").has_prediction


def test_a_cancel_during_the_read_stops_before_the_prediction(
    project: Project, service: ModelService, monkeypatch: pytest.MonkeyPatch
) -> None:
    cancel = threading.Event()
    real_read = models.read_image

    def read(path: Path):  # the user pressed Stop while the file was decoded
        cancel.set()
        return real_read(path)

    monkeypatch.setattr(models, "read_image", read)
    monkeypatch.setattr(
        ModelService, "predict", lambda *_a, **_k: pytest.fail("predicted after the cancel")
    )
    assert predict_one(service, project, "one.png", cancelled=cancel.is_set) is None
    assert not project.record("one.png").has_prediction


def test_a_cancel_while_the_model_loads_stops_before_the_read(
    project: Project, service: ModelService, monkeypatch: pytest.MonkeyPatch
) -> None:
    cancel = threading.Event()
    real_fits = models.check_model_fits

    def fits(*args):  # the model loads for seconds; the user pressed Stop meanwhile
        real_fits(*args)
        cancel.set()

    monkeypatch.setattr(models, "check_model_fits", fits)
    monkeypatch.setattr(models, "read_image", lambda _p: pytest.fail("read after the cancel"))
    assert predict_one(service, project, "one.png", cancelled=cancel.is_set) is None
