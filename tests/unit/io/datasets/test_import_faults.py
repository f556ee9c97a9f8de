"""Import under failure and kill -9: the project gains every new image with its labels,
or none of them, and nothing of the import is left behind after the next one."""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.core.errors import DatasetError, ProjectError
from segstudio.core.jobs import drive
from segstudio.io.datasets import import_dataset, staging
from segstudio.io.datasets.staging import STAGING_DIR_NAME, sweep_import_staging
from segstudio.io.project import ImageStatus, Project
from tests.unit.io.datasets.conftest import LS, make_image, make_mask, make_project
from tests.unit.io.datasets.kill9 import Killer

fork_only = pytest.mark.skipif(not hasattr(os, "fork"), reason="the kill helper forks")
NEW = 30


def write_dataset(folder: Path, n: int = NEW) -> dict[str, np.ndarray]:
    """An index dataset of ``n`` images named new00.png..., with LS's classes."""
    (folder / "images").mkdir(parents=True)
    (folder / "labels").mkdir()
    LS.save(folder / "classes.json")
    masks = {}
    for i in range(n):
        name = f"new{i:02d}.png"
        Image.fromarray(make_image(50 + i)).save(folder / "images" / name)
        masks[name] = make_mask(50 + i)
        Image.fromarray(masks[name]).save(folder / "labels" / name)
    return masks


@pytest.fixture
def template(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray], Path, dict[str, np.ndarray]]:
    """A closed four-image project, its masks, a dataset of 30 new images and theirs."""
    project, old = make_project(tmp_path / "template", n=4)
    project.close()
    new = write_dataset(tmp_path / "dataset")
    return tmp_path / "template", old, tmp_path / "dataset", new


def visible_files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.name != ".segstudio"}


def staging_left(folder: Path) -> list[str]:
    base = folder / ".segstudio" / STAGING_DIR_NAME
    return sorted(os.listdir(base)) if base.is_dir() else []


def check_all_or_nothing(folder: Path, old: dict, new: dict) -> bool:
    """After the clean-up: exactly the old images, or the old and every new one with
    its labels (REVIEWED). Returns whether the import is in."""
    with Project.open(folder) as project:
        sweep_import_staging(project)  # what the next import (or open) does first
        project.scan()
        records = {r.name: r for r in project.images()}
        imported = set(records) != set(old)
        expected = {**old, **new} if imported else old
        assert set(records) == set(expected)
        assert visible_files(folder) == set(expected)
        for name, mask in expected.items():
            assert records[name].status is ImageStatus.REVIEWED
            np.testing.assert_array_equal(project.load_labels(name), mask)
    assert staging_left(folder) == []
    return imported


def test_a_failed_commit_takes_the_copies_back_out(
    template, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, old, source, new = template
    shutil.copytree(folder, tmp_path / "p")
    folder = tmp_path / "p"

    def full_disk(*a: object, **k: object) -> int:
        raise ProjectError("new00.png: cannot write a label file (No space left on device)")

    with Project.open(folder) as project:
        monkeypatch.setattr(project, "import_labels", full_disk)
        with pytest.raises(ProjectError, match="No space left"):
            drive(import_dataset(project, source, "index"))
    assert not check_all_or_nothing(folder, old, new)


def test_cancel_while_copying_leaves_nothing(template, tmp_path: Path) -> None:
    folder, old, source, new = template
    shutil.copytree(folder, tmp_path / "p")
    folder = tmp_path / "p"
    with Project.open(folder) as project:
        gen = import_dataset(project, source, "index")
        for p in gen:
            if p.message == "copied":
                break
        gen.close()
        assert staging_left(folder) == [] and visible_files(folder) == set(old)
    assert not check_all_or_nothing(folder, old, new)


def _import_killed_at_commit(
    folder: Path, source: Path, monkeypatch: pytest.MonkeyPatch, *, commit: bool
) -> None:
    """Import, and stop dead just before (or just after) the commit, cleaning up nothing:
    what a kill there leaves (the interrupt stands in for the kill)."""

    def stop(self: Project, *a: object, **k: object) -> int:
        if commit:
            real(self, *a, **k)
        raise KeyboardInterrupt

    real = Project.import_labels
    with monkeypatch.context() as m:
        m.setattr(Project, "import_labels", stop)
        m.setattr(staging.Staging, "__exit__", lambda self, *e: self._forget())
        with Project.open(folder) as project, pytest.raises(KeyboardInterrupt):
            drive(import_dataset(project, source, "index"))


@pytest.mark.parametrize("commit", [False, True], ids=["before-commit", "after-commit"])
def test_a_kill_before_the_commit_is_undone_and_after_it_kept(
    template, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, commit: bool
) -> None:
    """What a kill leaves at the two ends of the last step: the copies moved in but no
    commit (before the fix: 30 unlabelled images stayed), and the commit made but the
    staging folder not yet deleted."""
    folder, old, source, new = template
    shutil.copytree(folder, tmp_path / "p")
    folder = tmp_path / "p"
    _import_killed_at_commit(folder, source, monkeypatch, commit=commit)
    assert visible_files(folder) == set(old) | set(new)  # all moved in, as after a kill
    assert len(staging_left(folder)) == 1
    assert check_all_or_nothing(folder, old, new) is commit


def test_a_copy_someone_worked_on_is_kept(
    template, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The undo never deletes an image a person worked on since (say in a window of a
    SegStudio that did not sweep when it opened the project)."""
    folder, old, source, _ = template
    shutil.copytree(folder, tmp_path / "p")
    folder = tmp_path / "p"
    _import_killed_at_commit(folder, source, monkeypatch, commit=False)
    with monkeypatch.context() as m:
        m.setattr(staging, "sweep_import_staging", lambda project: [])
        with Project.open(folder) as project:
            project.scan()
            project.set_status("new03.png", ImageStatus.IN_PROGRESS)
    with Project.open(folder) as project:
        project.scan()
        assert {r.name for r in project.images()} == set(old) | {"new03.png"}
    assert staging_left(folder) == []


def test_the_next_import_finds_the_project_clean(template, tmp_path: Path) -> None:
    """A kill while copying left a staging folder: the next import removes it first
    (and says so), then runs through."""
    folder, old, source, new = template
    shutil.copytree(folder, tmp_path / "p")
    folder = tmp_path / "p"
    with Project.open(folder) as project:
        staging_dir = folder / ".segstudio" / STAGING_DIR_NAME / "0123abcd"
        (staging_dir / "files").mkdir(parents=True)
        (staging_dir / "files" / "new00.png").write_bytes(b"half a cop")  # killed mid-copy
        report = drive(import_dataset(project, source, "index"))
        assert report.images == NEW and report.labels == NEW
        assert any("cut short" in w for w in report.warnings)
    assert check_all_or_nothing(folder, old, new)


def test_import_refuses_before_copying_when_names_clash(template, tmp_path: Path) -> None:
    folder, _, source, _ = template
    shutil.copytree(folder, tmp_path / "p")
    folder = tmp_path / "p"
    (folder / "new05.png").write_bytes(b"not the same image")
    with Project.open(folder) as project, pytest.raises(DatasetError, match=r"new05\.png"):
        drive(import_dataset(project, source, "index"))
    assert staging_left(folder) == []


def integrity(folder: Path) -> str:
    with sqlite3.connect(folder / ".segstudio" / "project.sqlite") as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0]


@fork_only
def test_kill9_during_import(template, tmp_path: Path) -> None:
    """kill -9 at random moments of an import of 30 images into a project of 4, and
    just before and after the commit: right after every kill the database is intact
    and no temporary image is in the project folder; after the next import's clean-up
    the project holds the 4 old images, or all 34 with their labels, and no staging
    folder is left."""
    folder, old, source, new = template
    rng = random.Random(4)
    trials = [("time", None)] * 60 + [
        ("call", ("segstudio.io.datasets.staging:Staging.move_in", 1)),
        ("call", ("os:rename", 7)),  # half-way through the moves
        ("call", ("segstudio.io.project.store:Project.scan", 1)),  # moved in, no commit
        ("call", ("segstudio.io.datasets.staging:_remove", 1)),  # committed, not tidied
    ]
    outcomes = {"killed": 0, "imported": 0, "undone": 0}
    with Killer() as killer:
        seconds = []  # how long an import takes, to spread the kills over it
        for k in range(3):
            probe = shutil.copytree(folder, tmp_path / f"probe{k}")
            first = killer.run("import", {"project": str(probe), "source": str(source)})
            assert first.rc == 0 and not first.killed, first.error
            seconds.append(first.seconds)
        for i, (kind, at) in enumerate(trials):
            target = tmp_path / f"t{i}"
            shutil.copytree(folder, target)
            args = {"project": str(target), "source": str(source)}
            if kind == "time":
                got = killer.run("import", args, delay=rng.uniform(0, min(seconds) * 1.1))
            else:
                got = killer.run("import", args, kill_at=at)
            assert got.killed or got.rc == 0, got.error
            outcomes["killed"] += got.killed
            assert integrity(target) == "ok"
            hidden = [n for n in os.listdir(target) if n.startswith(".") and n != ".segstudio"]
            assert hidden == []  # no temporary image in the folder
            assert visible_files(target) <= set(old) | set(new)
            imported = check_all_or_nothing(target, old, new)
            outcomes["imported" if imported else "undone"] += 1
            shutil.rmtree(target)
    assert outcomes["killed"] >= 25, outcomes
    assert outcomes["undone"] >= 10 and outcomes["imported"] >= 1, outcomes


def test_opening_the_project_undoes_a_killed_import(
    template, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window opens the project after the kill: it never shows the 30 copies
    without their labels (the store runs the sweep when it opens the project)."""
    folder, old, source, _ = template
    shutil.copytree(folder, tmp_path / "p")
    folder = tmp_path / "p"
    _import_killed_at_commit(folder, source, monkeypatch, commit=False)
    with Project.open(folder) as project:
        project.scan()
        assert {r.name for r in project.images()} == set(old)
    assert staging_left(folder) == [] and visible_files(folder) == set(old)
