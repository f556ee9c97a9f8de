"""kill -9 in the middle of painting loses at most the autosave window, and no file is corrupt."""

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
from tests.gui.crash_driver import dot_position

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_kill_9_loses_at_most_the_autosave_window(tmp_path: Path, isolated_config: Path) -> None:
    folder = make_images(tmp_path / "p", n=2, size=(360, 480))
    log = tmp_path / "dots.log"
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "SEGSTUDIO_CONFIG_DIR": str(isolated_config),
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    child = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "gui" / "crash_driver.py"), str(folder), str(log)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        # paint for a while past two autosave periods
        while time.monotonic() < deadline:
            if child.poll() is not None:
                pytest.fail(f"the app died by itself: {child.stderr.read().decode()[-2000:]}")
            lines = log.read_text().splitlines() if log.exists() else []
            if lines and float(lines[-1].split()[2]) - float(lines[0].split()[2]) > 12:
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
    assert len(dots) > 50
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
