"""Longest stall of the GUI event loop while "Predict all unreviewed" runs.

The window (Qt offscreen) opens a project of CamVid validation frames (linked
into a temporary folder) with an untrained full SegNet as the active model.
A 5 ms QTimer records when the event loop turns; a stall is the longest gap
between turns beyond the timer's own interval. The first job of a session
loads the model in the worker (torch itself is imported in the background
when the window opens); it is reported apart ("cold") from a later run. While the job runs, a brush
stroke is painted through the real mouse path every 50 ms, as a user keeps
working. Baseline, in the same run: the same predictions called on the GUI
thread, as a tool without workers would.

Prints one JSON object. Run:
``python benchmarks/bench_predict_stall.py [--camvid DIR] [--images N] [--width W]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QPointF, Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from segstudio.core.labelset import LabelSet
from segstudio.gui.main_window import MainWindow
from segstudio.model.arch import ArchSpec
from segstudio.model.files import new_model, save_model
from segstudio.session.models import predict_one, warm_up_torch

REPO = Path(__file__).resolve().parents[1]
INTERVAL_MS = 5


class Painter:
    """Paints through the real mouse path every 50 ms: a stroke back and forth along
    y = 200, as a user who keeps working while a job runs."""

    def __init__(self, win: MainWindow) -> None:
        self.win, self.x, self.down, self.moves = win, 50.0, False, 0
        self.timer = QTimer()
        self.timer.timeout.connect(self.step)

    def start(self) -> None:
        self.timer.start(50)

    def stop(self) -> None:
        self.timer.stop()

    def step(self) -> None:
        vp = self.win.canvas.viewport()
        p = self.win.canvas.mapFromScene(QPointF(self.x, 200.0))
        button, mods = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
        if not self.down:
            QTest.mousePress(vp, button, mods, p)
            self.down = True
        else:
            QTest.mouseMove(vp, p)
            self.moves += 1
        self.x = 50.0 + (self.x - 45.0) % 380
        if self.x < 60:
            QTest.mouseRelease(vp, button, mods, p)
            self.down = False


class Monitor:
    def __init__(self) -> None:
        self.turns: list[float] = []
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(lambda: self.turns.append(time.perf_counter()))

    def start(self) -> None:
        self.turns = [time.perf_counter()]
        self.timer.start(INTERVAL_MS)

    def stop(self) -> dict[str, float]:
        self.timer.stop()
        gaps = [
            (b - a) * 1000 - INTERVAL_MS for a, b in zip(self.turns, self.turns[1:], strict=False)
        ]
        gaps = sorted(max(g, 0.0) for g in gaps) or [0.0]
        return {
            "longest_stall_ms": round(gaps[-1], 1),
            "p99_stall_ms": round(gaps[int(0.99 * (len(gaps) - 1))], 1),
            "median_gap_ms": round(statistics.median(gaps), 2),
            "turns": len(gaps),
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--camvid", type=Path, default=REPO.parent / "shared" / "data" / "camvid")
    ap.add_argument("--images", type=int, default=12)
    ap.add_argument("--width", type=float, default=1.0, help="SegNet width multiplier")
    args = ap.parse_args()
    os.environ["SEGSTUDIO_CONFIG_DIR"] = tempfile.mkdtemp()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    tmp = Path(tempfile.mkdtemp())
    folder = tmp / "frames"
    folder.mkdir()
    for f in sorted((args.camvid / "val").iterdir())[: args.images]:
        (folder / f.name).symlink_to(f.resolve())
    labelset = LabelSet.load(args.camvid / "classes.json")
    model = save_model(
        tmp / "segnet.safetensors", new_model(ArchSpec("segnet", {"width": args.width}), labelset)
    )
    win = MainWindow()
    win.resize(1400, 900)
    win.show()
    win.open_folder(folder)
    while win.doc is None:
        app.processEvents()
    win.prediction.set_model(model)
    monitor = Monitor()

    # -- SegStudio: predict all in the worker, while painting ---------------------------
    painter = Painter(win)

    def predict_all_while_painting() -> dict:
        painter.moves = 0
        t0 = time.perf_counter()
        monitor.start()
        painter.start()
        win.action("actionPredictAll").trigger()
        while win.jobs.running:
            app.processEvents()
            time.sleep(0.001)
        painter.stop()
        result = monitor.stop()
        result["seconds"] = round(time.perf_counter() - t0, 2)
        result["brush_moves_painted_meanwhile"] = painter.moves
        return result

    # cold: the first job of the session loads the model in the worker; torch was imported
    # in the background right after the window appeared, as segstudio.gui.app.run does
    warm_up_torch().join()
    cold = predict_all_while_painting()
    # warm: the steady state, a later "predict all" (the reviewed status is cleared in between)
    ours = predict_all_while_painting()

    # -- baseline: the same predictions on the GUI thread ------------------------------
    names = win.images.names()

    def run_on_gui_thread() -> None:
        for name in names:
            predict_one(win.models, win.project, name)
            app.processEvents()  # even yielding between images cannot hide a whole prediction
        state["done"] = True

    state = {"done": False}
    t0 = time.perf_counter()
    monitor.start()
    QTimer.singleShot(0, run_on_gui_thread)
    while not state["done"]:
        app.processEvents()
        time.sleep(0.001)
    base = monitor.stop()
    base["seconds"] = round(time.perf_counter() - t0, 2)
    win.close()
    print(
        json.dumps(
            {
                "benchmark": "predict_all_gui_stall",
                "images": len(names),
                "model": f"segnet width {args.width}",
                "target_ms": 50,
                "segstudio_worker": ours,
                "segstudio_worker_first_job_cold": cold,
                "baseline_gui_thread": base,
                "stall_ratio": round(
                    base["longest_stall_ms"] / max(ours["longest_stall_ms"], 0.1), 1
                ),
            },
            indent=2,
        )
    )
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
