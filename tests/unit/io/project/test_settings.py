"""Project settings: JSON values kept in settings.json, a damaged file set aside."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from segstudio.io.project import Project
from tests.unit.io.project.conftest import OLD


def test_settings(proj: Project) -> None:
    assert proj.get_setting("brush", 7) == 7
    proj.set_setting("brush", {"size": 12, "shape": "round"})
    got = proj.get_setting("brush")
    got["size"] = 99  # a copy: the stored value does not change
    assert proj.get_setting("brush") == {"size": 12, "shape": "round"}
    on_disk = json.loads((proj.state_dir / "settings.json").read_text())
    assert on_disk["settings"]["brush"] == {"size": 12, "shape": "round"}
    with pytest.raises(TypeError, match="JSON"):
        proj.set_setting("bad", object())
    with pytest.raises(TypeError, match="JSON"):
        proj.set_setting("bad", float("nan"))
    assert proj.get_setting("bad") is None


def test_damaged_settings_are_set_aside(folder: Path) -> None:
    with Project.open(folder) as p:
        p.set_labelset(OLD)
    settings = folder / ".segstudio" / "settings.json"
    settings.write_text("{ not json")
    with Project.open(folder) as p:
        assert p.labelset == OLD  # the database holds the label set
        assert p.get_setting("anything", 5) == 5
    assert json.loads(settings.read_text())["labelset"] == OLD.to_dict()
    assert list(settings.parent.glob("settings.json.damaged-*"))
