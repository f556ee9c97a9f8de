"""The model registry: headers read torch-free; the active model a stored choice, not a guess."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from segstudio.core.errors import ModelFileError
from segstudio.core.labelset import LabelClass, LabelSet, preset
from segstudio.io.project import Project
from segstudio.io.project.models import ModelKind, read_metadata, read_summary
from segstudio.model.arch import ArchSpec
from segstudio.model.files import new_model, save_model, with_metadata
from tests.unit.io.project.conftest import NEW, OLD, write_model

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
        (b"", "is empty"),
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
        from segstudio.io.project.models import read_summary
        from segstudio.io.project import Project
        assert read_summary({str(model_file)!r}).arch == "segnet_basic"
        assert "torch" not in sys.modules, "torch was imported"
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_active_model_is_stored_and_restored_exactly(folder: Path) -> None:
    with Project.open(folder) as p:
        assert p.model_choice() is None and p.active_model() is None  # never guessed
        old = write_model(p.models_dir / "model-old.safetensors", created="2024-01-01T00:00:00")
        assert p.active_model() is None  # a model file is not a choice
        choice = p.set_active_model(old)
        assert choice.kind is ModelKind.PROJECT and choice.path == "model-old.safetensors"
        stored = json.loads((p.state_dir / "settings.json").read_text())["settings"]
        assert stored["active_model"] == {"kind": "project", "path": "model-old.safetensors"}
        write_model(p.models_dir / "model-new.safetensors", created="2025-01-01T00:00:00")
    with Project.open(folder) as p:  # a newer model changes nothing
        assert p.active_model() == p.models_dir / "model-old.safetensors"
        assert [m.name for m in p.models()] == ["model-old.safetensors", "model-new.safetensors"]
        p.set_active_model(None)
        assert p.model_choice() is None and p.active_model() is None


def test_a_moved_project_keeps_its_model(folder: Path, tmp_path: Path) -> None:
    with Project.open(folder) as p:
        p.set_active_model(write_model(p.models_dir / "m.safetensors", created="2024-01-01"))
    moved = tmp_path / "elsewhere"
    folder.rename(moved)
    with Project.open(moved) as p:
        assert p.active_model() == moved.resolve() / ".segstudio" / "models" / "m.safetensors"


def test_a_missing_active_model_is_reported_not_replaced(folder: Path) -> None:
    with Project.open(folder) as p:
        chosen = write_model(p.models_dir / "chosen.safetensors", created="2024-01-01")
        write_model(p.models_dir / "other.safetensors", created="2025-01-01")
        p.set_active_model(chosen)
        chosen.unlink()
        assert p.active_model() is None  # never "the newest" instead
        choice = p.model_choice()
        assert choice is not None and choice.label == "chosen.safetensors"
        assert choice.expected_path(p.models_dir) == chosen


def test_bundled_and_outside_models_are_stored_by_what_they_are(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundled = write_model(tmp_path / "install" / "bundled.safetensors", created="2023-01-01")
    outside = write_model(tmp_path / "mine" / "outside.safetensors", created="2023-06-01")
    monkeypatch.setenv("SEGSTUDIO_BUNDLED_MODEL", str(bundled))
    with Project.open(folder) as p:
        assert p.set_active_model(None, bundled=True).to_setting() == {"kind": "bundled"}
        assert p.active_model() == bundled
        assert p.set_active_model(bundled).kind is ModelKind.BUNDLED  # its file, too
        # a new installation keeps its bundled model elsewhere: the choice follows it
        upgraded = write_model(tmp_path / "new-install" / "b.safetensors", created="2024-01-01")
        monkeypatch.setenv("SEGSTUDIO_BUNDLED_MODEL", str(upgraded))
        assert p.active_model() == upgraded
        choice = p.set_active_model(outside)
        assert choice.to_setting() == {"kind": "file", "path": str(outside.resolve())}
        assert p.active_model() == outside.resolve()
        monkeypatch.setenv("SEGSTUDIO_BUNDLED_MODEL", str(tmp_path / "none.safetensors"))
        p.set_active_model(None, bundled=True)
        assert p.active_model() is None and p.model_choice().kind is ModelKind.BUNDLED


def test_an_old_plain_path_setting_is_understood(folder: Path, tmp_path: Path) -> None:
    with Project.open(folder) as p:
        model = write_model(p.models_dir / "m.safetensors", created="2024-01-01")
        p.set_setting("active_model", str(model))  # how earlier versions stored it
        assert p.model_choice().to_setting() == {"kind": "project", "path": "m.safetensors"}
        assert p.active_model() == model
    moved = tmp_path / "moved"
    folder.rename(moved)
    with Project.open(moved) as p:  # the old absolute path is gone; the file moved along
        assert p.active_model() == p.models_dir / "m.safetensors"
        p.set_setting("active_model", {"kind": "nonsense"})
        assert p.model_choice() is None


def test_models_lists_the_project_models_oldest_first(folder: Path) -> None:
    with Project.open(folder) as p:
        assert p.models() == []
        write_model(p.models_dir / "b.safetensors", created="2025-01-01T00:00:00+00:00")
        write_model(
            p.models_dir / "a.safetensors",
            created="2024-01-01T00:00:00+00:00",
            parent={"path": "/x/bundled.safetensors", "mean_iou": 0.4},
        )
        (p.models_dir / "broken.safetensors").write_bytes(b"\x00" * 3)
        (p.models_dir / ".b.safetensors.1234.tmp.safetensors").write_bytes(b"")  # unfinished
        (p.models_dir / "notes.txt").write_text("not a model")
        models = {m.name: m for m in p.models()}
        assert set(models) == {"a.safetensors", "b.safetensors", "broken.safetensors"}
        assert [m.name for m in p.models()][:2] == ["a.safetensors", "b.safetensors"]
        a = models["a.safetensors"]
        assert a.kind is ModelKind.PROJECT and a.arch == "segnet" and a.mean_iou == 0.5
        assert a.labelset.names == OLD.names and a.parent == Path("/x/bundled.safetensors")
        assert a.misfit(OLD) is None
        shouted = LabelSet(
            "x", tuple(LabelClass(c.name.upper(), (i, 2, 3)) for i, c in enumerate(OLD.classes))
        )
        assert a.misfit(shouted) is None  # names compared ignoring case; colours are ours
        assert a.misfit(NEW) == "3 classes; the project has 2"
        assert models["broken.safetensors"].error
