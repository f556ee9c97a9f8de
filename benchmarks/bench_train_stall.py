"""Longest stall of the GUI event loop while a fine-tune runs in the window.

The window (Qt offscreen) opens a project of CamVid training frames linked
into a temporary folder, with the dataset's annotations stored as labels, and
fine-tunes a SegNet (width 0.5) from scratch for a fixed number of steps
while a brush stroke is painted through the real mouse path every 50 ms.
A 5 ms QTimer records when the event loop turns; a stall is the longest gap
beyond the timer's own interval. Baseline, in the same run: the same number
of training steps driven on the GUI thread (yielding to the event loop after
every step), as a tool without a worker would. Also measured: how long a
Cancel takes to end a fine-tune of a full SegNet, clicked at random points
inside its (3-second) training steps.

Prints one JSON object. Run: ``python benchmarks/bench_train_stall.py [--camvid DIR] [--steps N]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from segstudio.core.labelset import UNLABELED, LabelSet
from segstudio.gui.main_window import MainWindow
from segstudio.io.images import read_label_map
from segstudio.io.project import Project
from segstudio.session.models import warm_up_torch
from segstudio.session.training import FineTuneRequest, NewArch, StartFrom

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_predict_stall import Monitor, Painter

REPO = Path(__file__).resolve().parents[1]


def cancel_latency(app: QApplication, win: MainWindow, runs: int) -> dict[str, float]:
    """Seconds from clicking Cancel to the job's end, fine-tuning a full SegNet,
    the click landing at a random point inside a training step."""
    rng = np.random.default_rng(0)
    times = []
    for _ in range(runs):
        request = FineTuneRequest(
            options={"minutes": 10.0, "batch_size": 4},
            start=StartFrom.NEW,
            arch=NewArch("segnet", {}),
        )
        win.training.fine_tune(request)
        while len(win.training_panel._loss[0]) < 1:  # inside the second step now
            app.processEvents()
            time.sleep(0.001)
        deadline = time.perf_counter() + rng.uniform(0.0, 2.0)
        while time.perf_counter() < deadline:
            app.processEvents()
            time.sleep(0.001)
        t0 = time.perf_counter()
        win.training_panel.cancel.click()
        while win.jobs.running:
            app.processEvents()
            time.sleep(0.001)
        times.append(time.perf_counter() - t0)
    return {"median": round(float(np.median(times)), 3), "max": round(max(times), 3), "runs": runs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--camvid", type=Path, default=REPO.parent / "shared" / "data" / "camvid")
    ap.add_argument("--images", type=int, default=12)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--cancels", type=int, default=5)
    args = ap.parse_args()
    os.environ["SEGSTUDIO_CONFIG_DIR"] = tempfile.mkdtemp()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    folder = Path(tempfile.mkdtemp()) / "frames"
    folder.mkdir()
    frames = sorted((args.camvid / "train").iterdir())[: args.images]
    for f in frames:
        (folder / f.name).symlink_to(f.resolve())
    with Project.open(folder) as project:
        project.scan()
        project.set_labelset(LabelSet.load(args.camvid / "classes.json"))
        for f in frames:
            labels = read_label_map(args.camvid / "trainannot" / f.name)
            project.save_labels(f.name, np.where(labels == 11, UNLABELED, labels).astype(np.uint8))
    warm_up_torch().join()  # as the app does right after its window appears
    win = MainWindow()
    win.resize(1400, 900)
    win.show()
    win.open_folder(folder)
    while win.doc is None:
        app.processEvents()
    batch = 4
    epochs = max(1, round(args.steps * batch / max(1, int(args.images * 0.85))))
    request = FineTuneRequest(
        options={"epochs": epochs, "batch_size": batch},
        start=StartFrom.NEW,
        arch=NewArch("segnet", {"width": 0.5}),
    )
    monitor = Monitor()
    painter = Painter(win)
    t0 = time.perf_counter()
    monitor.start()
    painter.start()
    win.training.fine_tune(request)
    while win.jobs.running:
        app.processEvents()
        time.sleep(0.001)
    painter.stop()
    ours = monitor.stop()
    ours["seconds"] = round(time.perf_counter() - t0, 2)
    ours["steps"] = len(win.training_panel._loss[0])
    ours["brush_moves_painted_meanwhile"] = painter.moves

    # baseline: the same training, stepped on the GUI thread
    from segstudio.model.arch import ArchSpec
    from segstudio.training.config import TrainConfig
    from segstudio.training.data import from_project
    from segstudio.training.loop import fine_tune

    data = from_project(win.project)
    gen = fine_tune(
        data,
        arch=ArchSpec("segnet", {"width": 0.5}),
        config=TrainConfig.from_dict(dict(request.options)),
    )
    done = {"flag": False, "steps": 0}

    def step() -> None:
        try:
            p = next(gen)
            done["steps"] += p.kind == "step"
            QTimer.singleShot(0, step)
        except StopIteration:
            done["flag"] = True

    t0 = time.perf_counter()
    monitor.start()
    QTimer.singleShot(0, step)
    while not done["flag"]:
        app.processEvents()
        time.sleep(0.001)
    base = monitor.stop()
    base["seconds"] = round(time.perf_counter() - t0, 2)
    base["steps"] = done["steps"]
    cancel = cancel_latency(app, win, args.cancels)
    win.close()
    print(
        json.dumps(
            {
                "benchmark": "fine_tune_gui_stall",
                "cancel_latency_full_segnet_s": cancel,
                "images": len(frames),
                "model": "segnet width 0.5, new, batch 4, crop 320",
                "target_ms": 50,
                "segstudio_worker": ours,
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
