"""Screenshot of Learn as I paint on a new domain (run under Xvfb).

    xvfb-run -s "-screen 0 1600x1000x24" \\
        python docs/live_screenshot.py ../shared/data/weizmann_horse docs/live.png

It builds a project of Weizmann horse photos (linked, not copied) with the
classes background and horse, which no shipped model knows, so the window
opens with Learn as I paint on. Like a labeller, it paints a few brush
strokes with the mouse on the first two photos (horse along the horse's
body, background around it, using the dataset's mask only to know where to
drag), waits for the live learner to learn them, opens the third photo and
takes a screenshot of the live learner's prediction of it. The strokes on
the first photos are the only labels the project has.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPointF, Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from segstudio.core.labelset import LabelClass, LabelSet, read_classes_file
from segstudio.gui.main_window import MainWindow
from segstudio.io.images import read_label_map
from segstudio.io.project import Project


def strokes(mask: np.ndarray, cls: int, n: int) -> list[list[tuple[float, float]]]:
    """``n`` horizontal drags through the middle of class ``cls``'s widest rows."""
    rows = np.flatnonzero((mask == cls).sum(1) > 0.2 * mask.shape[1])
    out = []
    for r in rows[np.linspace(0, len(rows) - 1, n + 2)[1:-1].astype(int)]:
        xs = np.flatnonzero(mask[r] == cls)
        mid = xs[len(xs) // 2]
        run = xs[(xs > mid - 60) & (xs < mid + 60)]
        out.append([(float(x), float(r)) for x in run[:: max(1, len(run) // 8)]])
    return out


def main() -> None:
    data, out = Path(sys.argv[1]), Path(sys.argv[2])
    os.environ.setdefault("SEGSTUDIO_CONFIG_DIR", tempfile.mkdtemp())
    folder = Path(tempfile.mkdtemp()) / "horses"
    folder.mkdir()
    photos = sorted((data / "images").iterdir())[:12]
    for f in photos:
        (folder / f.name).symlink_to(f.resolve())
    labelset, _ = read_classes_file(data / "classes.json")
    # the dataset's black background and dark-red horse vanish on dark photos:
    # colours a labeller would pick instead
    labelset = LabelSet(
        labelset.name,
        (LabelClass("background", (40, 110, 255)), LabelClass("horse", (255, 210, 0))),
    )
    with Project.open(folder) as project:
        project.scan()
        project.set_labelset(labelset)

    app = QApplication(sys.argv[:1])
    win = MainWindow()
    win.resize(1366, 768)
    win.show()
    vp = win.canvas.viewport()

    def drag(points: list[tuple[float, float]]) -> None:
        pos = [win.canvas.mapFromScene(QPointF(x + 0.5, y + 0.5)) for x, y in points]
        QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pos[0])
        for p in pos[1:]:
            QTest.mouseMove(vp, p)
        QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pos[-1])

    def wait(cond, timeout: float = 120.0) -> None:
        end = time.monotonic() + timeout
        while not cond() and time.monotonic() < end:
            app.processEvents()
            time.sleep(0.02)

    def run() -> None:
        win.open_folder(folder)
        assert win.action("actionLearnAsIPaint").isChecked(), "Learn as I paint is off"
        win.canvas.set_brush_radius(6)
        for photo in photos[:2]:
            win.images.select(photo.name)
            wait(lambda p=photo: win.doc is not None and win.doc.name == p.name)
            win.canvas.fit()
            app.processEvents()
            truth = read_label_map(data / "labels" / f"{photo.stem}.png")
            for cls, n in ((1, 3), (0, 4)):
                win.palette.choose(cls)
                for points in strokes(truth, cls, n):
                    drag(points)
                    app.processEvents()
            win.editing.save_now()
        third = photos[2].name
        win.images.select(third)
        wait(lambda: win.doc is not None and win.doc.name == third)
        wait(lambda: win.doc.prediction is not None)
        win.canvas.fit()
        painted = sum(int((win.project.load_labels(p.name) != 255).sum()) for p in photos[:2])
        print(f"labelled pixels on the first two photos: {painted}")
        QTimer.singleShot(800, save)

    def save() -> None:
        win.grab().save(str(out))
        print(f"wrote {out}")
        win.close()
        app.quit()

    QTimer.singleShot(300, run)
    app.exec()


if __name__ == "__main__":
    main()
