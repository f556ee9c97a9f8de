"""Time from launching ``segstudio FOLDER`` to the window shown, and to the folder open.

Each run starts a fresh process (``python -m segstudio FOLDER``) with the
start-up probe on, which prints wall-clock marks once the event loop turns
(window on screen) and once the folder is open with its first image shown.
Baseline, in the same run: the smallest PySide6 program that shows a window,
the floor any Qt app pays here. Also reported: whether torch was imported
before the window showed (it must not be), and what importing torch costs.

Prints one JSON object. Run: ``python benchmarks/bench_startup.py [--runs N] [--folder DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MINIMAL = (
    "import sys, time, json\n"
    "from PySide6.QtWidgets import QApplication, QMainWindow\n"
    "from PySide6.QtCore import QTimer\n"
    "app = QApplication([])\n"
    "w = QMainWindow(); w.show()\n"
    "def shown():\n"
    "    print(json.dumps({'window_shown': time.time()}), file=sys.stderr, flush=True)\n"
    "    app.quit()\n"
    "QTimer.singleShot(0, shown)\n"
    "app.exec()\n"
)


def _launch(cmd: list[str], env: dict[str, str]) -> dict[str, float]:
    t0 = time.time()
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    for line in run.stderr.splitlines():
        if line.startswith("{"):
            marks = json.loads(line)
            return {k: (v - t0 if k != "torch_imported" else v) for k, v in marks.items()}
    raise RuntimeError(f"no start-up marks from {cmd}: {run.stderr[-2000:]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--folder", type=Path, help="default: --count CamVid-sized images, made here")
    ap.add_argument("--count", type=int, default=10_000, help="images in the made folder")
    ap.add_argument(
        "--new-project",
        action="store_true",
        help="remove the folder's .segstudio before every launch: each run opens a new project",
    )
    args = ap.parse_args()
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    env["SEGSTUDIO_CONFIG_DIR"] = tempfile.mkdtemp()
    env["SEGSTUDIO_STARTUP_PROBE"] = "0.05"
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder
        if folder is None:
            import numpy as np
            from PIL import Image

            folder = Path(tmp) / "images"
            folder.mkdir()
            first = folder / "img00000.png"  # names sort naturally up to 99,999
            Image.fromarray(np.full((360, 480, 3), 128, np.uint8)).save(first)
            for i in range(1, args.count):  # same bytes, distinct names: the list is what counts
                (folder / f"img{i:05d}.png").write_bytes(first.read_bytes())
        ours = []
        for _ in range(args.runs):
            if args.new_project:
                shutil.rmtree(folder / ".segstudio", ignore_errors=True)
            ours.append(_launch([sys.executable, "-m", "segstudio", str(folder)], env))
        base = [_launch([sys.executable, "-c", MINIMAL], env) for _ in range(args.runs)]
    torch_s = []
    for _ in range(3):
        t0 = time.time()
        subprocess.run([sys.executable, "-c", "import torch"], check=True)
        torch_s.append(time.time() - t0)
    shown = [m["window_shown"] for m in ours]
    opened = [m["folder_open"] for m in ours]
    floor = [m["window_shown"] for m in base]
    print(
        json.dumps(
            {
                "benchmark": "startup",
                "runs": args.runs,
                "new_project_each_run": args.new_project,
                "images_in_folder": len(os.listdir(folder)) if args.folder else args.count,
                "window_shown_s": {
                    "median": round(statistics.median(shown), 3),
                    "max": round(max(shown), 3),
                },
                "folder_open_s": {
                    "median": round(statistics.median(opened), 3),
                    "max": round(max(opened), 3),
                },
                "minimal_qt_window_s": {"median": round(statistics.median(floor), 3)},
                "overhead_vs_minimal_qt": round(
                    statistics.median(shown) / statistics.median(floor), 2
                ),
                "torch_imported_before_show": any(m["torch_imported"] for m in ours),
                "python_import_torch_s": round(statistics.median(torch_s), 3),
                "target_s": 1.0,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
