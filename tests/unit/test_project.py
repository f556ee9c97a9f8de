"""The project store: index, labels, predictions, statuses, events, class migration."""

from __future__ import annotations

import getpass
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from segstudio.core.errors import ProjectError, SegStudioError
from segstudio.core.labelset import LabelClass, LabelSet, preset
from segstudio.io import project as project_module
from segstudio.io.images import read_label_map, write_label_map
from segstudio.io.model_registry import ModelKind
from segstudio.io.project import (
    MAX_RECENT_PROJECTS,
    SCHEMA_VERSION,
    ImageRecord,
    ImageStatus,
    Project,
    add_recent_project,
    recent_projects,
)

OLD = LabelSet(
    "old",
    (
        LabelClass("road", (128, 64, 128)),
        LabelClass("car", (64, 0, 128)),
        LabelClass("sky", (128, 128, 128)),
    ),
)
# "car" merges into "road", and the order flips: sky = 0, road = 1.
NEW = LabelSet("new", (LabelClass("sky", (128, 128, 128)), LabelClass("road", (128, 64, 128))))
LUT = np.arange(256, dtype=np.uint8)
LUT[[0, 1, 2]] = [1, 1, 0]

RNG = np.random.default_rng(7)


@pytest.fixture(autouse=True)
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep the recent-projects list out of the real home folder."""
    folder = tmp_path / "config"
    monkeypatch.setenv("SEGSTUDIO_CONFIG_DIR", str(folder))
    return folder


def make_folder(root: Path, names: list[str]) -> Path:
    """A folder with empty files of those names (scan never reads contents)."""
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        (root / name).touch()
    return root


def random_labels(h: int = 12, w: int = 16, n: int = 3) -> np.ndarray:
    labels = RNG.integers(0, n, (h, w), dtype=np.uint8)
    labels[0, :4] = 255
    return labels


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return make_folder(tmp_path / "images", ["a.png", "b.jpg", "c.tif"])


@pytest.fixture
def proj(folder: Path) -> Iterator[Project]:
    p = Project.open(folder)
    p.scan()
    yield p
    p.close()


def stored_files(project: Project) -> set[str]:
    return {
        f"{sub}/{name}"
        for sub in ("labels", "predictions")
        for name in os.listdir(project.state_dir / sub)
    }


def referenced_files(project: Project) -> set[str]:
    with sqlite3.connect(project.state_dir / "project.sqlite") as db:
        rows = db.execute("SELECT label_file, pred_file, conf_file FROM images").fetchall()
    out = set()
    for label, pred, conf in rows:
        out |= {f"labels/{label}"} if label else set()
        out |= {f"predictions/{f}" for f in (pred, conf) if f}
    return out


# --------------------------------------------------------------------------- open


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

    monkeypatch.setattr(project_module.os, "access", access)
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


def test_closed_project_refuses_calls(folder: Path) -> None:
    with Project.open(folder) as p:
        p.scan()
    with pytest.raises(ProjectError, match="closed"):
        p.images()
    p.close()  # twice is fine


# --------------------------------------------------------------------------- scan


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


# --------------------------------------------------------------------------- labels


def test_labels_round_trip(proj: Project) -> None:
    assert proj.load_labels("a.png") is None
    labels = random_labels(31, 17)
    proj.save_labels("a.png", labels, user="ann")
    got = proj.load_labels("a.png")
    assert got is not None and got.dtype == np.uint8
    np.testing.assert_array_equal(got, labels)
    rec = proj.record("a.png")
    assert rec.has_labels and not rec.has_prediction
    assert rec.status is ImageStatus.IN_PROGRESS
    assert rec.updated_by == "ann"
    # Overwriting keeps one file.
    proj.save_labels("a.png", np.zeros((31, 17), np.uint8))
    np.testing.assert_array_equal(proj.load_labels("a.png"), 0)
    assert len(os.listdir(proj.state_dir / "labels")) == 1


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.zeros((4, 4), np.int32), "dtype uint8"),
        (np.zeros((4, 4, 3), np.uint8), "2-D"),
        (np.zeros((0, 4), np.uint8), "empty"),
        ([[0, 1]], "numpy array"),
    ],
)
def test_save_labels_validates(proj: Project, bad: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        proj.save_labels("a.png", bad)  # type: ignore[arg-type]
    assert not proj.record("a.png").has_labels


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


# --------------------------------------------------------------------------- statuses


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


# --------------------------------------------------------------------------- predictions


def test_prediction_round_trip(proj: Project) -> None:
    assert proj.load_prediction("a.png") is None
    labels = random_labels()
    conf = RNG.random(labels.shape)
    proj.save_prediction("a.png", labels, conf, model="segnet")
    got = proj.load_prediction("a.png")
    assert got is not None
    np.testing.assert_array_equal(got[0], labels)
    expected = np.rint(conf * 255).astype(np.uint8)
    np.testing.assert_array_equal(got[1], expected)
    rec = proj.record("a.png")
    assert rec.has_prediction and not rec.has_labels
    assert rec.confidence == pytest.approx(expected.mean() / 255)
    assert rec.updated_at is None  # no person touched it
    # uint8 confidence is stored as is.
    conf8 = np.full(labels.shape, 51, np.uint8)
    proj.save_prediction("a.png", labels, conf8, model="segnet")
    assert proj.record("a.png").confidence == pytest.approx(0.2)


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        (np.full((12, 16), 1.5), "0..1"),
        (np.full((12, 16), np.nan), "0..1"),
        (np.full((12, 15), 0.5), "shape"),
        (np.full((12, 16), 3, np.int64), "floats"),
    ],
)
def test_prediction_validates_confidence(proj: Project, conf: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        proj.save_prediction("a.png", random_labels(), conf, model="m")
    assert not proj.record("a.png").has_prediction


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


# --------------------------------------------------------------------------- settings


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


def test_labelset(proj: Project) -> None:
    assert proj.labelset is None
    assert proj.labelset_or_default() == preset("camvid11")
    proj.set_labelset(OLD)
    assert proj.labelset == OLD
    on_disk = json.loads((proj.state_dir / "settings.json").read_text())
    assert LabelSet.from_dict(on_disk["labelset"]) == OLD
    # Growing or renaming is fine; shrinking with stored maps needs a migration.
    proj.save_labels("a.png", random_labels())
    with pytest.raises(ProjectError, match="migrate_classes"):
        proj.set_labelset(NEW)
    assert proj.labelset == OLD
    bigger = LabelSet("bigger", (*OLD.classes, LabelClass("tree", (0, 128, 0))))
    proj.set_labelset(bigger)
    assert proj.labelset == bigger


# --------------------------------------------------------------------------- migration


def populate(project: Project) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Labels and predictions (in OLD numbering) for every image; returns them."""
    project.set_labelset(OLD)
    data = {}
    for name in ("a.png", "b.jpg", "c.tif"):
        labels, pred = random_labels(), random_labels()
        conf = RNG.integers(0, 256, pred.shape, dtype=np.uint8)
        project.save_labels(name, labels)
        project.save_prediction(name, pred, conf, model="m")
        data[name] = (labels, pred, conf)
    return data


def assert_all_old(project: Project, data: dict) -> None:
    assert project.labelset == OLD
    assert project.labelset_version == 0
    for name, (labels, pred, conf) in data.items():
        np.testing.assert_array_equal(project.load_labels(name), labels)
        got = project.load_prediction(name)
        assert got is not None
        np.testing.assert_array_equal(got[0], pred)
        np.testing.assert_array_equal(got[1], conf)


def assert_all_new(project: Project, data: dict) -> None:
    assert project.labelset == NEW
    assert project.labelset_version == 1
    for name, (labels, pred, conf) in data.items():
        np.testing.assert_array_equal(project.load_labels(name), LUT[labels])
        got = project.load_prediction(name)
        assert got is not None
        np.testing.assert_array_equal(got[0], LUT[pred])
        np.testing.assert_array_equal(got[1], conf)


def assert_tidy(project: Project) -> None:
    """No file without a row, no row without a file, settings.json agrees with the DB."""
    assert stored_files(project) == referenced_files(project)
    on_disk = json.loads((project.state_dir / "settings.json").read_text())
    assert LabelSet.from_dict(on_disk["labelset"]) == project.labelset


def test_migrate_classes(proj: Project) -> None:
    data = populate(proj)
    proj.save_labels("a.png", data["a.png"][0])
    assert proj.migrate_classes(LUT, NEW, user="carol") == 6
    assert_all_new(proj, data)
    assert_tidy(proj)
    assert proj.history("b.jpg")[-1]["action"] == "migrate_classes"
    assert proj.history("b.jpg")[-1]["user"] == "carol"
    # Statuses are untouched, and new saves go to the new numbering.
    assert proj.record("a.png").status is ImageStatus.IN_PROGRESS
    proj.save_labels("a.png", np.ones((5, 5), np.uint8))
    assert_tidy(proj)
    proj.close()
    with Project.open(proj.folder) as again:
        assert again.labelset == NEW
        np.testing.assert_array_equal(again.load_labels("a.png"), 1)
        np.testing.assert_array_equal(again.load_labels("b.jpg"), LUT[data["b.jpg"][0]])


def test_migrate_classes_validates_lut(proj: Project) -> None:
    populate(proj)
    with pytest.raises(ValueError, match="256 uint8"):
        proj.migrate_classes(np.arange(256), NEW)
    with pytest.raises(ValueError, match="256 uint8"):
        proj.migrate_classes(LUT[:10], NEW)
    identity = np.arange(256, dtype=np.uint8)  # sky (2) does not exist in NEW
    with pytest.raises(ValueError, match="outside the new label set"):
        proj.migrate_classes(identity, NEW)
    assert proj.labelset == OLD and proj.labelset_version == 0


def test_migrate_drops_files_deleted_by_hand(proj: Project) -> None:
    data = populate(proj)
    for f in (proj.state_dir / "predictions").glob("b.jpg.v0.png"):
        f.unlink()
    assert proj.migrate_classes(LUT, NEW) == 5
    rec = proj.record("b.jpg")
    assert rec.has_labels and not rec.has_prediction and rec.confidence is None
    assert proj.load_prediction("b.jpg") is None
    np.testing.assert_array_equal(proj.load_labels("b.jpg"), LUT[data["b.jpg"][0]])
    assert_tidy(proj)


def test_stale_labelset_version_is_refused(proj: Project) -> None:
    populate(proj)
    version = proj.labelset_version
    proj.migrate_classes(LUT, NEW)
    with pytest.raises(ProjectError, match="migrated"):
        proj.save_labels("a.png", random_labels(), labelset_version=version)
    with pytest.raises(ProjectError, match="migrated"):
        proj.save_prediction(
            "a.png", random_labels(), np.zeros((12, 16)), model="m", labelset_version=version
        )
    proj.save_labels("a.png", random_labels(2), labelset_version=proj.labelset_version)


@pytest.mark.parametrize("k", [0, 1, 4])
def test_migrate_failure_leaves_project_old(
    proj: Project, monkeypatch: pytest.MonkeyPatch, k: int
) -> None:
    data = populate(proj)
    real = project_module.write_label_map
    calls = []

    def failing(*args: object, **kwargs: object) -> None:
        if len(calls) == k:
            raise OSError(28, "No space left on device")
        calls.append(args)
        real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(project_module, "write_label_map", failing)
    with pytest.raises(ProjectError, match="No space left"):
        proj.migrate_classes(LUT, NEW)
    monkeypatch.undo()
    assert_all_old(proj, data)
    assert_tidy(proj)
    proj.close()
    with Project.open(proj.folder) as again:
        assert_all_old(again, data)
        assert_tidy(again)
        assert again.migrate_classes(LUT, NEW) == 6  # and it can still be done
        assert_all_new(again, data)


_KILL_SCRIPT = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    from segstudio.core.labelset import LabelSet
    from segstudio.io import project as P

    folder, phase, k, new_json = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    new = LabelSet.from_json(open(new_json).read())
    lut = np.arange(256, dtype=np.uint8)
    lut[[0, 1, 2]] = [1, 1, 0]
    proj = P.Project.open(folder)
    labels_dir = proj.state_dir / "labels"

    if phase == "write":  # killed after k remapped files, mid-way through another
        real = P.write_label_map
        done = []
        def write(path, *a, **kw):
            if len(done) == k:
                (labels_dir / ".x.png.v1.png.dead.tmp.png").write_bytes(b"half")
                os._exit(9)
            done.append(path)
            real(path, *a, **kw)
        P.write_label_map = write
    elif phase == "settings":  # killed right after the commit
        def write_text(*a, **kw):
            os._exit(9)
        P.atomic_write_text = write_text
    elif phase == "discard":  # killed while deleting the old files
        real_discard = P._discard
        def discard(paths):
            paths = list(paths)
            if not paths:  # the sweep before the migration: nothing to remove
                return
            real_discard(paths[:k])
            os._exit(9)
        P._discard = discard
    proj.migrate_classes(lut, new)
    os._exit(0)
    """
)


@pytest.mark.parametrize(
    ("phase", "k", "expect_new"),
    [
        ("write", 0, False),
        ("write", 3, False),
        ("write", 5, False),
        ("settings", 0, True),
        ("discard", 2, True),
    ],
)
def test_migrate_killed_midway_is_all_or_nothing(
    folder: Path, tmp_path: Path, phase: str, k: int, expect_new: bool
) -> None:
    with Project.open(folder) as p:
        p.scan()
        data = populate(p)
    new_json = tmp_path / "new.json"
    NEW.save(new_json)
    result = subprocess.run(
        [sys.executable, "-c", _KILL_SCRIPT, str(folder), phase, str(k), str(new_json)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 9, result.stderr
    with Project.open(folder) as p:
        if expect_new:
            assert_all_new(p, data)
        else:
            assert_all_old(p, data)
        assert_tidy(p)


def test_interrupted_label_save_is_adopted(proj: Project) -> None:
    # A kill between writing the PNG and updating the row leaves a file in the
    # current numbering that no row names: the next open keeps it.
    labels = random_labels()
    write_label_map(proj.state_dir / "labels" / "c.tif.v0.png", labels)
    write_label_map(proj.state_dir / "labels" / "c.tif.v7.png", labels)  # stale numbering
    (proj.state_dir / "predictions" / ".b.jpg.v0.png.1234.tmp.png").write_bytes(b"x")
    proj.close()
    with Project.open(proj.folder) as p:
        rec = p.record("c.tif")
        assert rec.has_labels and rec.status is ImageStatus.IN_PROGRESS
        np.testing.assert_array_equal(p.load_labels("c.tif"), labels)
        assert p.history("c.tif")[-1]["action"] == "recovered_labels"
        assert stored_files(p) == {"labels/c.tif.v0.png"}


def test_migration_files_use_palette_of_new_set(proj: Project) -> None:
    populate(proj)
    proj.migrate_classes(LUT, NEW)
    (path,) = (proj.state_dir / "labels").glob("a.png.v1.png")
    from PIL import Image

    with Image.open(path) as im:
        assert im.mode == "P"
        assert tuple(im.getpalette()[:6]) == (*NEW.classes[0].color, *NEW.classes[1].color)
    np.testing.assert_array_equal(read_label_map(path), proj.load_labels("a.png"))


# --------------------------------------------------------------------------- threads


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


# --------------------------------------------------------------------------- recent projects


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


# --------------------------------------------------------------------------- model registry


def write_model(path: Path, *, created: str, classes: LabelSet = OLD, **provenance) -> Path:
    """A model file as far as the registry reads it: a safetensors header, no tensors."""
    doc = {
        "format": "segstudio.model",
        "version": 1,
        "arch": {"name": "segnet", "params": {}},
        "labelset": classes.to_dict(),
        "provenance": {"created": created, **provenance},
        "metrics": {"mean_iou": 0.5},
    }
    header = json.dumps({"__metadata__": {"segstudio": json.dumps(doc)}}).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(len(header).to_bytes(8, "little") + header)
    return path


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
