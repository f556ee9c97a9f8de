"""Fault injection: kill -9 a class migration at random moments; the project ends all old
or all new, tidy, with an intact database, every time."""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from segstudio.io.project import Project
from tests.unit.io.project.conftest import (
    NEW,
    assert_all_new,
    assert_all_old,
    assert_tidy,
    populate,
)

TRIALS = 30

_CHILD = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from segstudio.core.labelset import LabelSet
    from segstudio.io.project import Project

    folder, new_json = sys.argv[1], sys.argv[2]
    new = LabelSet.from_json(open(new_json).read())
    lut = np.arange(256, dtype=np.uint8)
    lut[[0, 1, 2]] = [1, 1, 0]
    proj = Project.open(folder)
    print("go", flush=True)
    t0 = time.perf_counter()
    proj.migrate_classes(lut, new)
    print(time.perf_counter() - t0, flush=True)
    """
)


def _migrate(folder: Path, new_json: Path, kill_after: float | None) -> tuple[int, float | None]:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(folder), str(new_json)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "go"
    if kill_after is not None:
        time.sleep(kill_after)
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
    out, err = child.communicate(timeout=120)
    assert child.returncode in (0, -signal.SIGKILL), err[-2000:]
    return child.returncode, float(out) if child.returncode == 0 else None


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs kill -9")
def test_kill_9_at_random_moments_of_a_migration(folder: Path, tmp_path: Path) -> None:
    with Project.open(folder) as p:
        p.scan()
        data = populate(p)
    template = tmp_path / "template"
    shutil.copytree(folder, template)
    new_json = tmp_path / "new.json"
    NEW.save(new_json)
    code, duration = _migrate(folder, new_json, None)  # how long one takes here
    assert code == 0 and duration is not None
    rng = random.Random(3)
    ended = {"old": 0, "new": 0}
    for trial in range(TRIALS):
        work = tmp_path / f"trial{trial}"
        shutil.copytree(template, work)
        _migrate(work, new_json, rng.uniform(0.0, duration * 1.3))
        with sqlite3.connect(work / ".segstudio" / "project.sqlite") as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        with Project.open(work) as p:  # opening recovers what the kill left
            if p.labelset_version == 0:
                assert_all_old(p, data)
                ended["old"] += 1
            else:
                assert_all_new(p, data)
                ended["new"] += 1
            assert_tidy(p)
    assert sum(ended.values()) == TRIALS
