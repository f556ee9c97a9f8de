"""The per-user list of recent projects."""

from __future__ import annotations

import os
import time
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


def test_old_temp_files_of_killed_writes_are_swept(tmp_path: Path, config_dir: Path) -> None:
    config_dir.mkdir()
    old = config_dir / ".recent_projects.json.1f2e3d4c.tmp.json"
    young = config_dir / ".recent_projects.json.0badf00d.tmp.json"  # another one writing now
    mine = config_dir / "notes.tmp.json"
    for p in (old, young, mine):
        p.write_text("x")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    add_recent_project(make_folder(tmp_path / "p", []))
    assert not old.exists() and young.exists() and mine.exists()
