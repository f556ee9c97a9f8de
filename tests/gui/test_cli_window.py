"""``segstudio -v FOLDER`` and ``segstudio FOLDER -v`` open the window on the folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from segstudio import cli
from segstudio.gui.app import PROBE_ENV
from tests.gui.conftest import make_images


@pytest.mark.parametrize("order", ["before", "after"])
def test_verbose_with_a_folder_opens_the_window_on_it(tmp_path: Path, order: str) -> None:
    folder = make_images(tmp_path / "photos", n=2)
    argv = ["-v", str(folder)] if order == "before" else [str(folder), "--verbose"]
    # the start-up probe: the window opens the folder, prints its timings, and quits
    env = {**os.environ, PROBE_ENV: "0.2", "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run(
        [sys.executable, "-m", "segstudio", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "unknown command" not in done.stderr
    probe = json.loads(next(ln for ln in done.stderr.splitlines() if ln.startswith("{")))
    assert probe["folder_open"] >= probe["window_shown"]  # the folder was opened in the window
    assert (folder / ".segstudio").is_dir()


def test_verbose_with_a_mistyped_command_still_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["-v", "predcit"]) == cli.EXIT_USAGE
    assert "did you mean 'predict'?" in capsys.readouterr().err
