"""Opening a project, scanning its folder, statuses, events and queries."""

from __future__ import annotations

import getpass
import os
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest

from segstudio.core.errors import ProjectError
from segstudio.io.project import SCHEMA_VERSION, ImageRecord, ImageStatus, Project, store
from tests.unit.io.project.conftest import OLD, RNG, make_folder, random_labels


def test_open_creates_state(folder: Path) -> None:
    with Project.open(folder) as p:
        assert p.folder == folder.resolve()
        assert p.state_dir == folder.resolve() / ".segstudio"
        for sub in ("labels", "predictions", "models"):
            assert (p.state_dir / sub).is_dir()
        assert p.models_dir == p.state_dir / "models"
        assert (p.state_dir / "settings.json").is_file()
        assert p.labelset is None
        assert p.labelset_version == 0
    db = sqlite3.connect(folder / ".segstudio" / "project.sqlite")
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_reopen_restores_everything(folder: Path) -> None:
    labels = random_labels()
    pred = random_labels()
    conf = RNG.random(pred.shape).astype(np.float32)
    with Project.open(folder) as p:
        assert p.scan() == 3
        p.set_labelset(OLD)
        p.set_setting("opacity", 0.4)
        p.set_setting("hidden", ["sky"])
        p.save_labels("a.png", labels, user="ann")
        p.save_prediction("b.jpg", pred, conf, model="segnet-1")
        p.set_status("c.tif", ImageStatus.REVIEWED, user="bob")
        before = p.images()
    with Project.open(folder, create=False) as p:
        assert p.images() == before
        assert p.labelset == OLD
        assert p.get_setting("opacity") == 0.4
        assert p.get_setting("hidden") == ["sky"]
        np.testing.assert_array_equal(p.load_labels("a.png"), labels)
        got = p.load_prediction("b.jpg")
        assert got is not None
        np.testing.assert_array_equal(got[0], pred)
        np.testing.assert_array_equal(got[1], np.rint(conf * 255).astype(np.uint8))
        assert p.record("c.tif").updated_by == "bob"
        assert [e["action"] for e in p.history("a.png")] == ["save_labels"]


def test_open_refuses_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="no such folder"):
        Project.open(tmp_path / "nope")


def test_open_refuses_a_file(tmp_path: Path) -> None:
    f = tmp_path / "file.png"
    f.write_bytes(b"x")
    with pytest.raises(ProjectError, match="is a file, not a folder"):
        Project.open(f)


def test_open_without_create_refuses_plain_folder(folder: Path) -> None:
    with pytest.raises(ProjectError, match="not a SegStudio project"):
        Project.open(folder, create=False)
    assert not (folder / ".segstudio").exists()


def test_open_refuses_state_dir_that_is_a_file(folder: Path) -> None:
    (folder / ".segstudio").write_text("oops")
    with pytest.raises(ProjectError, match="is a file"):
        Project.open(folder)


def test_open_refuses_unwritable_folder(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests may run as root, who may write anywhere: pretend the folder is read-only.
    real_access = os.access

    def access(path: object, mode: int, **kw: object) -> bool:
        if Path(os.fspath(path)) == folder.resolve() and mode & os.W_OK:  # type: ignore[arg-type]
            return False
        return real_access(path, mode, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(store.os, "access", access)
    with pytest.raises(ProjectError, match="not writable"):
        Project.open(folder)


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can write anywhere"
)
def test_open_refuses_read_only_folder(folder: Path) -> None:
    folder.chmod(0o555)
    try:
        with pytest.raises(ProjectError, match="not writable"):
            Project.open(folder)
    finally:
        folder.chmod(0o755)


def test_scan_adds_flags_and_restores(folder: Path) -> None:
    with Project.open(folder) as p:
        assert p.scan() == 3
        labels = random_labels()
        p.save_labels("b.jpg", labels)
        (folder / "b.jpg").unlink()
        make_folder(folder, ["d.webp", "notes.txt", ".hidden.png"])
        assert p.scan() == 3
        assert [r.name for r in p.images()] == ["a.png", "c.tif", "d.webp"]
        # The vanished image keeps its record and labels.
        assert p.record("b.jpg").has_labels
        (folder / "b.jpg").touch()
        assert p.scan() == 4
        assert [r.name for r in p.images()] == ["a.png", "b.jpg", "c.tif", "d.webp"]
        assert p.record("b.jpg").status is ImageStatus.IN_PROGRESS
        np.testing.assert_array_equal(p.load_labels("b.jpg"), labels)
        assert p.record("d.webp") == ImageRecord(
            "d.webp", ImageStatus.UNLABELED, None, None, None, False, False
        )


def test_scan_of_ten_thousand_names_in_natural_order(tmp_path: Path) -> None:
    names = [f"img{i}.png" for i in range(10_000)]
    root = make_folder(tmp_path / "many", names[::-1])
    with Project.open(root) as p:
        assert p.scan() == 10_000
        got = [r.name for r in p.images()]
        assert got == names  # img2 before img10
        assert got.index("img2.png") < got.index("img10.png")
        assert p.scan() == 10_000  # a second scan changes nothing
        assert len(p.images(ImageStatus.UNLABELED)) == 10_000


def test_natural_order_mixed_names(tmp_path: Path) -> None:
    names = ["B2.png", "a10.png", "a2.png", "a2b.png", "A3.png", "x.png"]
    with Project.open(make_folder(tmp_path / "f", names)) as p:
        p.scan()
        assert [r.name for r in p.images()] == [
            "a2.png",
            "a2b.png",
            "A3.png",
            "a10.png",
            "B2.png",
            "x.png",
        ]


def test_unknown_image_is_a_project_error(proj: Project) -> None:
    for call in (
        lambda: proj.record("zzz.png"),
        lambda: proj.load_labels("zzz.png"),
        lambda: proj.save_labels("zzz.png", random_labels()),
        lambda: proj.image_path("../etc/passwd"),
        lambda: proj.history("zzz.png"),
    ):
        with pytest.raises(ProjectError, match="no image"):
            call()
    assert proj.image_path("a.png") == proj.folder / "a.png"


def test_default_user_and_events(proj: Project) -> None:
    t0 = time.time()
    proj.save_labels("a.png", random_labels())
    proj.set_status("a.png", ImageStatus.REVIEWED, user="bob")
    proj.save_prediction("a.png", random_labels(), np.full((12, 16), 200, np.uint8), model="m1")
    events = proj.history("a.png")
    assert [e["action"] for e in events] == ["save_labels", "set_status", "save_prediction"]
    assert events[0]["user"] == getpass.getuser()
    assert events[1]["user"] == "bob"
    assert events[1]["detail"] == {"from": "in_progress", "to": "reviewed"}
    assert events[2]["detail"]["model"] == "m1"
    times = [e["time"] for e in events]
    assert times == sorted(times) and t0 <= times[0] <= time.time()
    rec = proj.record("a.png")
    assert rec.updated_by == "bob" and rec.updated_at == times[1]
    assert proj.history("b.jpg") == []


def test_status_never_downgrades(proj: Project) -> None:
    conf = np.full((12, 16), 0.5, np.float32)
    proj.save_prediction("a.png", random_labels(), conf, model="m")
    assert proj.record("a.png").status is ImageStatus.PREDICTED
    proj.save_labels("a.png", random_labels())
    assert proj.record("a.png").status is ImageStatus.IN_PROGRESS
    proj.save_prediction("a.png", random_labels(), conf, model="m")
    assert proj.record("a.png").status is ImageStatus.IN_PROGRESS
    proj.set_status("a.png", ImageStatus.REVIEWED)
    proj.save_labels("a.png", random_labels())
    assert proj.record("a.png").status is ImageStatus.REVIEWED
    proj.save_prediction("a.png", random_labels(), conf, model="m")
    assert proj.record("a.png").status is ImageStatus.REVIEWED
    # REVIEWED straight from UNLABELED, then a prediction: still REVIEWED.
    proj.set_status("b.jpg", "reviewed")  # type: ignore[arg-type]
    proj.save_prediction("b.jpg", random_labels(), conf, model="m")
    assert proj.record("b.jpg").status is ImageStatus.REVIEWED
    assert [r.name for r in proj.images(ImageStatus.REVIEWED)] == ["a.png", "b.jpg"]
    with pytest.raises(ValueError):
        proj.set_status("a.png", "done")  # type: ignore[arg-type]


def test_least_confident(proj: Project) -> None:
    assert proj.least_confident() is None
    labels = random_labels()
    for name, c in (("a.png", 0.9), ("b.jpg", 0.2), ("c.tif", 0.5)):
        proj.save_prediction(name, labels, np.full(labels.shape, c), model="m")
    assert proj.least_confident() == "b.jpg"
    proj.set_status("b.jpg", ImageStatus.REVIEWED)
    assert proj.least_confident() == "c.tif"
    assert proj.least_confident(status_in=(ImageStatus.REVIEWED,)) == "b.jpg"
    proj.save_labels("c.tif", labels)
    assert proj.least_confident(status_in=(ImageStatus.PREDICTED,)) == "a.png"
    assert proj.least_confident(status_in=()) is None
