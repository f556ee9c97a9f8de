"""The label set and class migration: all or nothing, also when killed part-way."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from segstudio.core.errors import ProjectError
from segstudio.core.labelset import LabelClass, LabelSet, preset
from segstudio.io.images import read_label_map
from segstudio.io.project import ImageStatus, Project, migration
from tests.unit.io.project.conftest import (
    LUT,
    NEW,
    OLD,
    assert_all_new,
    assert_all_old,
    assert_tidy,
    populate,
    random_labels,
)


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


def test_a_reviewed_image_that_loses_labels_is_in_progress_again(proj: Project) -> None:
    """Removing a class unlabels its pixels: a reviewed image that had some is no longer
    complete (it would be exported and trained on as if it were), one that had none, or
    whose classes were only renumbered or merged, stays reviewed."""
    proj.set_labelset(OLD)
    car = np.ones((5, 5), np.uint8)  # all car (1)
    no_car = np.zeros((5, 5), np.uint8)  # all road (0)
    for name, labels in (("a.png", car), ("b.jpg", no_car), ("c.tif", car)):
        proj.save_labels(name, labels)
        proj.set_status(name, ImageStatus.REVIEWED)
    proj.set_status("c.tif", ImageStatus.IN_PROGRESS)
    drop_car = np.arange(256, dtype=np.uint8)
    drop_car[[0, 1, 2]] = [1, 255, 0]  # road -> road (1), car removed, sky -> sky (0)
    proj.migrate_classes(drop_car, NEW)
    assert proj.record("a.png").status is ImageStatus.IN_PROGRESS
    assert proj.history("a.png")[-2]["action"] == "reopened"
    assert proj.record("b.jpg").status is ImageStatus.REVIEWED
    assert proj.record("c.tif").status is ImageStatus.IN_PROGRESS
    # a merge loses nothing: still reviewed
    proj.set_status("a.png", ImageStatus.REVIEWED)
    proj.save_labels("a.png", np.ones((5, 5), np.uint8))
    proj.set_status("a.png", ImageStatus.REVIEWED)
    merge = np.arange(256, dtype=np.uint8)
    merge[[0, 1]] = [0, 0]  # sky and road into sky
    proj.migrate_classes(merge, LabelSet("one", (LabelClass("sky", (128, 128, 128)),)))
    assert proj.record("a.png").status is ImageStatus.REVIEWED


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
    real = migration.write_label_map
    calls = []

    def failing(*args: object, **kwargs: object) -> None:
        if len(calls) == k:
            raise OSError(28, "No space left on device")
        calls.append(args)
        real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(migration, "write_label_map", failing)
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
    from segstudio.io.project import Project, migration, settings

    folder, phase, k, new_json = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    new = LabelSet.from_json(open(new_json).read())
    lut = np.arange(256, dtype=np.uint8)
    lut[[0, 1, 2]] = [1, 1, 0]
    proj = Project.open(folder)
    labels_dir = proj.state_dir / "labels"

    if phase == "write":  # killed after k remapped files, mid-way through another
        real = migration.write_label_map
        done = []
        def write(path, *a, **kw):
            if len(done) == k:
                (labels_dir / ".x.png.v1.png.dead.tmp.png").write_bytes(b"half")
                os._exit(9)
            done.append(path)
            real(path, *a, **kw)
        migration.write_label_map = write
    elif phase == "settings":  # killed right after the commit
        def write_text(*a, **kw):
            os._exit(9)
        settings.atomic_write_text = write_text
    elif phase == "discard":  # killed while deleting the old files
        real_discard = migration._discard
        def discard(paths):
            paths = list(paths)
            if not paths:  # nothing to delete: not the step to be killed in
                return
            real_discard(paths[:k])
            os._exit(9)
        migration._discard = discard
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


def test_migration_files_use_palette_of_new_set(proj: Project) -> None:
    populate(proj)
    proj.migrate_classes(LUT, NEW)
    (path,) = (proj.state_dir / "labels").glob("a.png.v1.png")
    from PIL import Image

    with Image.open(path) as im:
        assert im.mode == "P"
        assert tuple(im.getpalette()[:6]) == (*NEW.classes[0].color, *NEW.classes[1].color)
    np.testing.assert_array_equal(read_label_map(path), proj.load_labels("a.png"))
