"""kill -9 in the middle of painting loses at most the autosave window, and no file is corrupt.

Also in the middle of one long drag: the part drawn so far is autosaved while the
button is still down.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from segstudio.gui.editing import AUTOSAVE_IDLE_MS, AUTOSAVE_MAX_MS
from segstudio.io.project import Project
from tests.gui.conftest import make_images
from tests.gui.crash_driver import STROKE_AUTOSAVE_MS, STROKE_CLASS, dot_position

REPO = Path(__file__).resolve().parents[2]


def _start_driver(folder: Path, log: Path, config: Path, mode: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "SEGSTUDIO_CONFIG_DIR": str(config),
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    driver = REPO / "tests" / "gui" / "crash_driver.py"
    return subprocess.Popen(
        [sys.executable, str(driver), str(folder), str(log), mode],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
# kills at different moments of the autosave cycle (idle 1.5 s, at most every 5 s)
@pytest.mark.parametrize("paint_s", [6.7, 9.1, 12.0])
def test_kill_9_loses_at_most_the_autosave_window(
    tmp_path: Path, isolated_config: Path, paint_s: float
) -> None:
    folder = make_images(tmp_path / "p", n=2, size=(360, 480))
    log = tmp_path / "dots.log"
    child = _start_driver(folder, log, isolated_config, "dots")
    try:
        deadline = time.monotonic() + 60
        # paint for a while past two autosave periods
        while time.monotonic() < deadline:
            if child.poll() is not None:
                pytest.fail(f"the app died by itself: {child.stderr.read().decode()[-2000:]}")
            lines = log.read_text().splitlines() if log.exists() else []
            if lines and float(lines[-1].split()[2]) - float(lines[0].split()[2]) > paint_s:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the app painted too slowly")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        killed_at = time.time()
        child.stderr.close()
    dots = [line.split() for line in log.read_text().splitlines()]
    assert len(dots) > 20
    window_s = (AUTOSAVE_MAX_MS + AUTOSAVE_IDLE_MS) / 1000 + 2.0  # save interval + write time
    with Project.open(folder) as project:
        labels = project.load_labels("img0.png")  # must read: no half-written file
    assert labels is not None and labels.shape == (360, 480)
    lost_old = []
    for k, cls, t in dots:
        x, y = dot_position(int(k), 480)
        if killed_at - float(t) > window_s and labels[y, x] != int(cls):
            lost_old.append(k)
    assert not lost_old, f"dots painted more than {window_s:.1f} s before the kill were lost"
    # reopening cleaned up the temporary file of a write the kill interrupted, if any
    leftovers = [p.name for p in (folder / ".segstudio" / "labels").iterdir() if ".tmp" in p.name]
    assert leftovers == []


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_kill_9_during_one_long_drag_keeps_what_was_drawn(
    tmp_path: Path, isolated_config: Path
) -> None:
    """The button never goes up: the drag's pixels drawn before the last autosave survive."""
    folder = make_images(tmp_path / "p", n=1, size=(360, 480))
    log = tmp_path / "stroke.log"
    child = _start_driver(folder, log, isolated_config, "stroke")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # drag for several autosave periods
            if child.poll() is not None:
                pytest.fail(f"the app died by itself: {child.stderr.read().decode()[-2000:]}")
            lines = log.read_text().splitlines() if log.exists() else []
            if lines and float(lines[-1].split()[2]) - float(lines[0].split()[2]) > 6:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the app dragged too slowly")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        killed_at = time.time()
        child.stderr.close()
    points = [line.split() for line in log.read_text().splitlines()]
    max_ms = STROKE_AUTOSAVE_MS[1]
    window_s = max_ms / 1000 + 2.0  # save interval + copy, encode and write time
    old = [(int(x), int(y)) for x, y, t in points if killed_at - float(t) > window_s]
    assert len(old) > 20, "too few points drawn before the autosave window to check"
    with Project.open(folder) as project:
        labels = project.load_labels("img0.png")
    assert labels is not None, "nothing of the drag was saved"
    lost = [(x, y) for x, y in old if labels[y, x] != STROKE_CLASS]
    assert not lost, f"{len(lost)} of {len(old)} points drawn over {window_s} s before the kill"
