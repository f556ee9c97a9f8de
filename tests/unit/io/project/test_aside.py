"""Labels that no longer fit are kept aside, never overwritten; the way back after a
class migration is recorded."""

from __future__ import annotations

import numpy as np
import pytest

from segstudio.core.errors import ProjectError
from segstudio.core.labelset import LabelClass, LabelSet
from segstudio.io.images import read_label_map
from segstudio.io.project import ImageStatus, Project
from tests.unit.io.project.conftest import LUT, NEW, OLD, assert_tidy, populate, random_labels


def _aside_files(p: Project) -> list[str]:
    folder = p.state_dir / "labels" / "aside"
    return sorted(f.name for f in folder.iterdir()) if folder.is_dir() else []


def test_saving_labels_of_another_size_keeps_the_old_ones_aside(proj: Project) -> None:
    proj.set_labelset(OLD)
    reviewed = random_labels(12, 16)
    proj.save_labels("a.png", reviewed)
    proj.set_status("a.png", ImageStatus.REVIEWED)
    proj.save_labels("a.png", np.zeros((30, 40), np.uint8))  # the image grew
    (kept,) = _aside_files(proj)
    np.testing.assert_array_equal(read_label_map(proj.state_dir / "labels/aside" / kept), reviewed)
    np.testing.assert_array_equal(proj.load_labels("a.png"), 0)
    # the new labels start over: the review was of the old ones
    assert proj.record("a.png").status is ImageStatus.IN_PROGRESS
    actions = [e["action"] for e in proj.history("a.png")]
    assert actions[-2:] == ["labels_set_aside", "save_labels"]
    detail = proj.history("a.png")[-2]["detail"]
    assert detail["file"] == f"aside/{kept}" and detail["from"] == "reviewed"
    assert "12" in detail["reason"] and "40" in detail["reason"]
    proj.save_labels("a.png", np.ones((30, 40), np.uint8))  # same size: replaced as usual
    assert _aside_files(proj) == [kept]
    assert_tidy(proj)


def test_set_labels_aside_moves_the_file_and_forgets_it(proj: Project) -> None:
    populate(proj)
    assert proj.set_labels_aside("b.jpg", "the image file changed") is not None
    rec = proj.record("b.jpg")
    assert not rec.has_labels and rec.status is ImageStatus.PREDICTED  # its prediction stays
    assert proj.load_labels("b.jpg") is None
    assert proj.set_labels_aside("b.jpg", "again") is None  # nothing left to move
    assert len(_aside_files(proj)) == 1
    assert_tidy(proj)  # the old file is gone from labels/, no row names a missing file
    proj.close()
    with Project.open(proj.folder) as again:  # the orphan sweep does not bring it back
        assert again.load_labels("b.jpg") is None
        assert len(_aside_files(again)) == 1


def test_kept_aside_files_survive_a_class_migration_untouched(proj: Project) -> None:
    populate(proj)
    aside = proj.set_labels_aside("a.png", "the image file changed")
    assert aside is not None
    before = aside.read_bytes()
    proj.migrate_classes(LUT, NEW)
    assert aside.read_bytes() == before
    assert_tidy(proj)


def test_keep_labels_aside_writes_edits_that_cannot_be_stored(proj: Project) -> None:
    proj.save_labels("a.png", random_labels())
    stored = proj.load_labels("a.png")
    edits = np.full((12, 16), 2, np.uint8)
    path = proj.keep_labels_aside("a.png", edits, "no way to renumber", labelset_version=0)
    assert path.parent.name == "aside" and ".v0.unsaved" in path.name
    np.testing.assert_array_equal(read_label_map(path), edits)
    np.testing.assert_array_equal(proj.load_labels("a.png"), stored)  # untouched
    assert proj.history("a.png")[-1]["action"] == "labels_kept_aside"
    with pytest.raises(ProjectError, match="no image"):
        proj.keep_labels_aside("nope.png", edits, "x")


def test_migration_lut_composes_the_recorded_migrations(proj: Project) -> None:
    populate(proj)
    identity = np.arange(256, dtype=np.uint8)
    np.testing.assert_array_equal(proj.migration_lut(0), identity)
    proj.migrate_classes(LUT, NEW)  # version 1
    swap = np.arange(256, dtype=np.uint8)
    swap[[0, 1]] = [1, 0]
    flipped = LabelSet("flipped", (NEW.classes[1], NEW.classes[0]))
    proj.migrate_classes(swap, flipped)  # version 2
    np.testing.assert_array_equal(proj.migration_lut(0), swap[LUT])
    np.testing.assert_array_equal(proj.migration_lut(1), swap)
    np.testing.assert_array_equal(proj.migration_lut(2), identity)
    assert proj.migration_lut(3) is None  # newer than the project: no way known
    assert proj.migration_lut(0)[255] == 255


def test_migration_lut_is_none_without_a_recorded_table(proj: Project) -> None:
    proj.set_labelset(OLD)
    with proj._transaction() as db:  # a project migrated by a SegStudio that kept no table
        db.execute("UPDATE meta SET value = '1' WHERE key = 'labelset_version'")
    assert proj.migration_lut(0) is None
    assert proj.migration_lut(1) is not None
    bigger = LabelSet("bigger", (*OLD.classes, LabelClass("tree", (0, 128, 0))))
    proj.set_labelset(bigger)  # no renumbering: the version stays
    assert proj.labelset_version == 1
