"""The SQLite layer: damaged, newer or foreign databases, a closed project, threads."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest

from segstudio.core.errors import ProjectError, SegStudioError
from segstudio.io.project import SCHEMA_VERSION, ImageStatus, Project
from tests.unit.io.project.conftest import make_folder, referenced_files, stored_files


def test_corrupt_database_is_reported_and_kept(folder: Path) -> None:
    Project.open(folder).close()
    db = folder / ".segstudio" / "project.sqlite"
    garbage = b"this is not an sqlite database at all" * 100
    db.write_bytes(garbage)
    with pytest.raises(ProjectError, match="corrupt") as info:
        Project.open(folder)
    assert isinstance(info.value, SegStudioError)
    assert db.read_bytes() == garbage  # never deleted or rewritten


def test_newer_schema_is_refused(folder: Path) -> None:
    Project.open(folder).close()
    db = sqlite3.connect(folder / ".segstudio" / "project.sqlite")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(ProjectError, match="newer SegStudio"):
        Project.open(folder)


def test_foreign_database_is_refused(folder: Path) -> None:
    state = folder / ".segstudio"
    state.mkdir()
    db = sqlite3.connect(state / "project.sqlite")
    db.execute("CREATE TABLE something (x)")
    db.commit()
    db.close()
    with pytest.raises(ProjectError, match="not a SegStudio project database"):
        Project.open(folder)


def test_closed_project_refuses_calls(folder: Path) -> None:
    with Project.open(folder) as p:
        p.scan()
    with pytest.raises(ProjectError, match="closed"):
        p.images()
    p.close()  # twice is fine


def test_concurrent_saves_from_two_threads(tmp_path: Path) -> None:
    names = [f"img{i}.png" for i in range(20)]
    root = make_folder(tmp_path / "threads", names)
    errors: list[BaseException] = []
    with Project.open(root) as p:
        p.scan()
        start = threading.Barrier(3)

        def painter() -> None:
            try:
                start.wait()
                for i in range(60):
                    p.save_labels(names[i % 20], np.full((16, 16), i % 3, np.uint8))
            except BaseException as exc:
                errors.append(exc)

        def predictor() -> None:
            try:
                start.wait()
                for i in range(60):
                    conf = np.full((16, 16), 0.5, np.float32)
                    p.save_prediction(names[i % 20], np.zeros((16, 16), np.uint8), conf, model="m")
            except BaseException as exc:
                errors.append(exc)

        def reader() -> None:
            try:
                start.wait()
                for _ in range(60):
                    p.images()
                    p.least_confident()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=f) for f in (painter, predictor, reader)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in threads)
        assert errors == []
        for rec in p.images():
            assert rec.has_labels and rec.has_prediction
            assert rec.status is ImageStatus.IN_PROGRESS
        assert len(p.history("img0.png")) == 6
        assert stored_files(p) == referenced_files(p)
