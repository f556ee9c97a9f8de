"""Temporary files of killed writes are swept when a project is next opened, nothing else.

Includes a fault-injection run: a child process saving settings and labels in a
loop is killed with SIGKILL at random moments (and once deterministically between
a temp file's write and its rename); after every kill the project opens, its
database passes ``integrity_check``, every stored file reads, and no temp file is
left.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from segstudio.io.images import read_label_map
from segstudio.io.project import Project
from segstudio.io.project.leftovers import is_temp_name, sweep_temp_files
from tests.unit.io.project.conftest import make_folder

KILL_TRIALS = 8


@pytest.mark.parametrize(
    ("name", "temp"),
    [
        (".settings.json.1f2e3d4c.tmp.json", True),
        (".a.png.v0.png.0123abcd.tmp.png", True),
        (".checkpoint.safetensors.deadbeef.tmp.safetensors", True),
        (".noext.0123abcd.tmp", True),
        ("settings.json", False),
        ("notes.tmp.json", False),  # a user's file
        (".settings.json.bak", False),
        ("settings.json.damaged-1700000000", False),
        (".settings.json.1F2E3D4C.tmp.json", False),  # the writers use lower-case hex
        (".settings.json.1f2e3d4c.tmp.png", False),  # suffix of another target
        (".x.12345.tmp.json", False),
    ],
)
def test_the_temp_name_pattern(name: str, temp: bool) -> None:
    assert is_temp_name(name) is temp


def test_open_sweeps_the_writers_temp_files_and_nothing_else(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "images", ["a.png"])
    Project.open(root).close()
    state = root / ".segstudio"
    temps = [
        state / ".settings.json.1f2e3d4c.tmp.json",
        state / "labels" / ".a.png.v0.png.0123abcd.tmp.png",
        state / "predictions" / ".a.png.conf.png.0123abcd.tmp.png",
        state / "models" / ".tuned.safetensors.deadbeef.tmp.safetensors",
    ]
    kept = [
        state / "notes.tmp.json",
        state / ".settings.json.bak",
        state / "settings.json.damaged-1700000000",
        state / "models" / "tuned.safetensors",
        root / ".a.png.0123abcd.tmp.png",  # the images folder is the user's
    ]
    (state / "labels" / "aside").mkdir()
    temps.append(state / "labels" / "aside" / ".x.png.0badf00d.tmp.png")
    for p in temps + kept:
        p.write_bytes(b"x")
    future = state / ".settings.json.aaaaaaaa.tmp.json"  # changed after the open began
    future.write_bytes(b"x")
    later = time.time() + 3600
    os.utime(future, (later, later))
    with Project.open(root):
        pass
    assert [p.name for p in temps if p.exists()] == []
    assert [p.name for p in kept if not p.exists()] == []
    assert future.exists()


def test_a_read_only_open_sweeps_nothing(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "images", ["a.png"])
    Project.open(root).close()
    temp = root / ".segstudio" / ".settings.json.1f2e3d4c.tmp.json"
    temp.write_bytes(b"x")
    with Project.open(root, read_only=True):
        pass
    assert temp.exists()


def test_sweep_skips_missing_folders(tmp_path: Path) -> None:
    assert sweep_temp_files([tmp_path / "nope", tmp_path / "file"]) == []


# Saves settings and labels in a loop until killed; with "die-at-replace", dies
# (exit 9) the first time an atomic write is about to rename its temp file.
_WRITER = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    from segstudio.core import atomic
    from segstudio.io.project import Project
    folder, mode = sys.argv[1], sys.argv[2]
    if mode == "die-at-replace":
        def replace(src, dst):
            os._exit(9)
        atomic.os.replace = replace
    p = Project.open(folder)
    print("ready", flush=True)
    rng = np.random.default_rng(int(sys.argv[3]))
    k = 0
    while True:
        p.set_setting("counter", k)
        p.save_labels("a.png", rng.integers(0, 3, (64, 80), dtype=np.uint8))
        k += 1
    """
)


def _env() -> dict[str, str]:
    repo = str(Path(__file__).resolve().parents[4])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [repo, env.get("PYTHONPATH")]))
    return env


def _temp_files(state: Path) -> list[str]:
    return [p.name for p in state.rglob("*") if is_temp_name(p.name)]


def _assert_sound(root: Path) -> None:
    """Opens; integrity_check ok; settings and labels read; no temp file anywhere."""
    with Project.open(root) as p:
        labels = p.load_labels("a.png")
        assert labels is None or labels.shape == (64, 80)
        assert isinstance(p.get_setting("counter", 0), int)
    state = root / ".segstudio"
    with sqlite3.connect(state / "project.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    json.loads((state / "settings.json").read_text(encoding="utf-8"))
    for f in (state / "labels").glob("*.png"):
        read_label_map(f)
    assert _temp_files(state) == []


def test_a_write_killed_before_its_rename_leaves_nothing_after_the_next_open(
    tmp_path: Path,
) -> None:
    root = make_folder(tmp_path / "images", ["a.png"])
    with Project.open(root) as p:
        p.scan()
    run = subprocess.run(
        [sys.executable, "-c", _WRITER, str(root), "die-at-replace", "0"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert run.returncode == 9, run.stderr
    assert _temp_files(root / ".segstudio") != []  # the kill left one: what is swept
    _assert_sound(root)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_kill_9_at_random_moments_of_saving(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "images", ["a.png"])
    with Project.open(root) as p:
        p.scan()
    rng = random.Random(14)
    for trial in range(KILL_TRIALS):
        child = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(root), "loop", str(trial)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        assert child.stdout is not None
        assert child.stdout.readline().startswith("ready"), child.communicate()[1]
        time.sleep(rng.uniform(0.05, 0.4))  # a random moment of the save loop
        child.send_signal(signal.SIGKILL)
        child.communicate()
        _assert_sound(root)
