"""The per-user list of recent projects."""

from __future__ import annotations

from pathlib import Path

from segstudio.io.project import MAX_RECENT_PROJECTS, add_recent_project, recent_projects
from tests.unit.io.project.conftest import make_folder


def test_recent_projects(tmp_path: Path, config_dir: Path) -> None:
    assert recent_projects() == []
    folders = [make_folder(tmp_path / f"p{i}", []) for i in range(12)]
    for f in folders:
        add_recent_project(f)
    got = recent_projects()
    assert len(got) == MAX_RECENT_PROJECTS
    assert got[0] == folders[-1].resolve()
    add_recent_project(folders[5])  # again: moves to the front, no duplicate
    got = recent_projects()
    assert got[0] == folders[5].resolve() and got.count(folders[5].resolve()) == 1
    folders[11].rmdir()
    assert folders[11].resolve() not in recent_projects()
    assert (config_dir / "recent_projects.json").is_file()


def test_recent_projects_survive_a_damaged_file(tmp_path: Path, config_dir: Path) -> None:
    config_dir.mkdir()
    (config_dir / "recent_projects.json").write_text("[[[")
    assert recent_projects() == []
    add_recent_project(make_folder(tmp_path / "p", []))
    assert recent_projects() == [(tmp_path / "p").resolve()]
