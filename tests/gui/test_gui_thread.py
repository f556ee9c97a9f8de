"""Nothing that imports torch runs on the window's thread (a fresh process: torch unloaded)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
BUNDLED = REPO / "resources" / "camvid_segnet.safetensors"

SCRIPT = r"""
import importlib.abc, json, sys, threading, time
from pathlib import Path

where = {}

class Spy(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" and "torch" not in where:
            where["torch"] = threading.current_thread() is threading.main_thread()
        return None

sys.meta_path.insert(0, Spy())
from PySide6.QtWidgets import QApplication
from segstudio.gui.main_window import MainWindow

app = QApplication([])
win = MainWindow()
win.show()
t0 = time.monotonic()
win.open_folder(Path(sys.argv[1]))
opened = time.monotonic() - t0
deadline = time.monotonic() + 60
while time.monotonic() < deadline:  # until the shown image is predicted (in a worker)
    app.processEvents()
    if win.doc is not None and win.doc.prediction is not None:
        break
    time.sleep(0.01)
predicted = win.doc is not None and win.doc.prediction is not None
win.close()
print(json.dumps({"torch_on_gui_thread": where.get("torch"), "predicted": predicted}))
"""


@pytest.mark.skipif(not BUNDLED.is_file(), reason="no bundled model in this checkout")
def test_a_new_project_predicts_without_importing_torch_on_the_gui_thread(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "road"
    folder.mkdir()
    rgb = np.random.default_rng(0).integers(0, 255, (96, 128, 3), np.uint8)
    Image.fromarray(rgb).save(folder / "a.png")
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "SEGSTUDIO_BUNDLED_MODEL": str(BUNDLED),
        "SEGSTUDIO_CONFIG_DIR": str(tmp_path / "config"),
        "OMP_NUM_THREADS": "1",
    }
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(folder)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["predicted"], run.stderr[-3000:]  # the bundled model did predict the image
    assert result["torch_on_gui_thread"] is False  # ... and torch came in on a worker
