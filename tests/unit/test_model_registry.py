"""The model registry reads real model files' headers, torch-free and without weights."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from segstudio.core.errors import ModelFileError
from segstudio.core.labelset import LabelClass, LabelSet, preset
from segstudio.io.model_registry import ModelKind, read_metadata, read_summary
from segstudio.model.arch import ArchSpec
from segstudio.model.files import new_model, save_model, with_metadata

TINY = ArchSpec("segnet_basic", {"width": 0.125, "depth": 2})


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    model = new_model(TINY, preset("camvid11"))
    provenance = {
        **model.info.provenance,
        "parent": {"path": "/models/parent.safetensors", "mean_iou": 0.41},
    }
    model = with_metadata(model, provenance=provenance, metrics={"mean_iou": 0.52, "images": 3})
    return save_model(tmp_path / "model-1.safetensors", model)


def test_a_saved_model_is_summarised_from_its_header(model_file: Path) -> None:
    s = read_summary(model_file, ModelKind.PROJECT)
    assert s.error is None and s.name == "model-1.safetensors" and s.kind is ModelKind.PROJECT
    assert s.arch == "segnet_basic"
    assert s.labelset.same_classes(preset("camvid11"))
    assert s.mean_iou == pytest.approx(0.52) and s.metrics["images"] == 3
    assert s.parent == Path("/models/parent.safetensors")
    assert abs(s.created - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
    assert read_metadata(model_file)["provenance"]["parent"]["mean_iou"] == 0.41


def test_misfit_names_the_reason(model_file: Path) -> None:
    s = read_summary(model_file)
    camvid = preset("camvid11")
    assert s.misfit(camvid) is None
    recoloured = LabelSet("c", (LabelClass("SKY", (9, 9, 9)), *camvid.classes[1:]))
    assert s.misfit(recoloured) is None  # names ignore case, colours are the project's
    assert s.misfit(preset("voc")) == "11 classes; the project has 21"
    renamed = LabelSet("c", (LabelClass("cloud", (9, 9, 9)), *camvid.classes[1:]))
    assert s.misfit(renamed) == "class 0 is “Sky”; the project's is “cloud”"


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "not found"),
        (b"", "bad header"),
        (b"\xff" * 16, "bad header"),
        ((40).to_bytes(8, "little") + b"{}", "truncated"),
        ((2).to_bytes(8, "little") + b"{}", "not a SegStudio model"),
    ],
)
def test_a_bad_file_is_listed_with_its_error(tmp_path: Path, content: bytes | None, says: str):
    path = tmp_path / "bad.safetensors"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelFileError, match=says):
        read_metadata(path)
    s = read_summary(path)
    assert s.error is not None and says in s.error and s.misfit(preset("camvid11")) == s.error


def test_the_registry_never_imports_torch(model_file: Path) -> None:
    code = textwrap.dedent(
        f"""
        import sys
        from segstudio.io.model_registry import read_summary
        from segstudio.io.project import Project
        assert read_summary({str(model_file)!r}).arch == "segnet_basic"
        assert "torch" not in sys.modules, "torch was imported"
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
