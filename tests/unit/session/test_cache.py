"""session/cache.py: the window's copy of the records, current after every write."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segstudio.core.labelset import LabelClass, LabelSet
from segstudio.io.project import ImageStatus, Project, StoreChange
from segstudio.session.cache import ProjectCache

LS = LabelSet("t", (LabelClass("a", (10, 10, 10)), LabelClass("b", (200, 0, 0))))


@pytest.fixture
def project(tmp_path: Path) -> Project:
    for name in ("a.png", "b.png", "c.png"):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / name)
    project = Project.open(tmp_path)
    project.scan()
    project.set_labelset(LS)
    yield project
    project.close()


def test_the_store_says_what_each_write_changed(project: Project) -> None:
    seen: list[StoreChange] = []
    project.changed.connect(seen.append)
    project.save_labels("a.png", np.zeros((8, 8), np.uint8))
    project.set_status("b.png", ImageStatus.REVIEWED)
    project.set_setting("view", {"x": 1})
    assert [c.names for c in seen] == [frozenset({"a.png"}), frozenset({"b.png"}), frozenset()]
    assert seen[0].actions == {"save_labels"} and seen[2].settings == {"view"}
    project.set_labelset(LabelSet("u", LS.classes))
    assert seen[-1].names is None  # a class change: any record may have changed


def test_a_failed_write_says_nothing(project: Project) -> None:
    seen: list[StoreChange] = []
    project.changed.connect(seen.append)
    with pytest.raises(ValueError):
        project.save_labels("a.png", np.zeros((8, 8), np.int32))
    assert seen == []


def test_the_cache_follows_writes_from_other_threads(project: Project) -> None:
    cache = ProjectCache(project)
    told: list[object] = []
    cache.changed.connect(told.append)
    assert [r.status for r in cache.records()] == [ImageStatus.UNLABELED] * 3

    def worker() -> None:  # a prediction job, say
        conf = np.full((8, 8), 0.25, np.float32)
        project.save_prediction("c.png", np.ones((8, 8), np.uint8), conf, model="m")

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert cache.status("c.png") is ImageStatus.PREDICTED
    assert cache.least_confident() == project.least_confident() == "c.png"
    assert told == [frozenset({"c.png"})]
    project.save_labels("a.png", np.zeros((8, 8), np.uint8))
    assert cache.record("a.png").has_labels and cache.status("a.png") is ImageStatus.IN_PROGRESS
    cache.close()
    project.set_status("b.png", ImageStatus.REVIEWED)
    assert cache.status("b.png") is ImageStatus.UNLABELED  # closed: no longer follows


def test_a_scan_reloads_everything(project: Project, tmp_path: Path) -> None:
    cache = ProjectCache(project)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "d.png")
    project.scan()
    assert cache.names() == ["a.png", "b.png", "c.png", "d.png"]
    assert cache.labelset == LS and cache.labelset_version == project.labelset_version


def test_reading_the_cache_never_waits_for_a_write_in_progress(project: Project) -> None:
    cache = ProjectCache(project)
    holding, release = threading.Event(), threading.Event()

    def long_write() -> None:  # a class migration holds the store's lock for seconds
        with project._lock:
            holding.set()
            release.wait(10)

    writer = threading.Thread(target=long_write)
    writer.start()
    holding.wait(10)
    got: list[object] = []
    reader = threading.Thread(target=lambda: got.append(cache.status("a.png")))
    reader.start()
    reader.join(5)
    finished = not reader.is_alive()
    release.set()
    writer.join()
    assert finished and got == [ImageStatus.UNLABELED]
