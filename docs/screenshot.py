"""Take the README's screenshots of the real window (run under Xvfb).

    xvfb-run -s "-screen 0 1600x1000x24" \
        python docs/screenshot.py ../shared/data/camvid docs/screenshot.png
    xvfb-run -s "-screen 0 1600x1000x24" \
        python docs/screenshot.py ../shared/data/camvid docs/bundled.png --prediction

The README's laptop screenshots (the window filling a 1366 x 768 screen, and the
same at 2x scale, zoomed in so that the overview shows):

    xvfb-run -s "-screen 0 1366x768x24" \
        python docs/screenshot.py ../shared/data/camvid docs/window_1366.png --laptop
    QT_SCALE_FACTOR=2 xvfb-run -s "-screen 0 2732x1536x24" \
        python docs/screenshot.py ../shared/data/camvid docs/window_2x.png --laptop --zoom 2.2

It builds a project from a few CamVid validation frames (linked, not copied),
stores the dataset's own annotations of two frames as their labels (void ->
unlabeled) -- as an import would -- opens the project in the window, picks
the road class and takes a screenshot. With ``--prediction`` the project has
no labels: the window opens it with the bundled model, which predicts the
frame on show, and the screenshot shows that prediction.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPointF, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from segstudio.core.labelset import UNLABELED, LabelSet
from segstudio.gui.main_window import MainWindow
from segstudio.io.images import read_label_map
from segstudio.io.project import ImageStatus, Project


def main() -> None:
    camvid, out = Path(sys.argv[1]), Path(sys.argv[2])
    prediction = "--prediction" in sys.argv[3:]
    if "--laptop" in sys.argv[3:]:
        laptop(camvid, out, float(_option("--zoom", "0")))
        return
    os.environ.setdefault("SEGSTUDIO_CONFIG_DIR", tempfile.mkdtemp())
    folder = Path(tempfile.mkdtemp()) / "camvid-val"
    folder.mkdir()
    frames = sorted((camvid / "val").iterdir())[40 if prediction else 0 :][:8]
    for f in frames:
        (folder / f.name).symlink_to(f.resolve())
    labelset = LabelSet.load(camvid / "classes.json")
    with Project.open(folder) as project:
        project.scan()
        project.set_labelset(labelset)
        for f in [] if prediction else frames[:2]:
            labels = read_label_map(camvid / "valannot" / f.name)
            labels = np.where(labels == 11, UNLABELED, labels).astype(np.uint8)
            project.save_labels(f.name, labels, user="camvid")
        if not prediction:
            project.set_status(frames[1].name, ImageStatus.REVIEWED)

    app = QApplication(sys.argv[:1])
    win = MainWindow()
    win.resize(1560, 940)
    win.show()

    def shoot() -> None:
        win.open_folder(folder)
        win.images.select(frames[0].name)
        win.palette.choose(3)
        win.canvas.fit()
        win.canvas.set_tool(win.canvas.tool)
        win.statusBar().showMessage("")
        if prediction:  # the window predicts the shown image by itself
            if win.models.path is None:
                sys.exit("no bundled model in this build")
            QTimer.singleShot(300, wait_for_prediction)
        else:
            QTimer.singleShot(600, grab)

    def wait_for_prediction() -> None:
        if win.jobs.running or win.doc is None or win.doc.prediction is None:
            QTimer.singleShot(200, wait_for_prediction)
            return
        win.statusBar().showMessage("")
        QTimer.singleShot(600, grab)

    grab = _grabber(app, win, out, QPointF(240.5, 300.5), settle_ms=400)

    QTimer.singleShot(300, shoot)
    app.exec()


def _grabber(
    app: QApplication, win: MainWindow, out: Path, at: QPointF, settle_ms: int
) -> Callable[[], None]:
    """What takes the screenshot: a real mouse move to ``at`` (scene coordinates), so the
    status bar reports what is under it, then, once it settled, the grab, and quit."""

    def save() -> None:
        win.grab().save(str(out))
        print(f"wrote {out}")
        win.close()
        app.quit()

    def grab() -> None:
        QTest.mouseMove(win.canvas.viewport(), win.canvas.mapFromScene(at))
        QTimer.singleShot(settle_ms, save)

    return grab


def _option(name: str, default: str) -> str:
    args = sys.argv[3:]
    return args[args.index(name) + 1] if name in args else default


def laptop(camvid: Path, out: Path, zoom: float) -> None:
    """Twelve frames: three reviewed, the one on show in progress (road, pavement and a
    car painted), its prediction by the bundled model hatched underneath; the window fills
    the screen as on a laptop; ``zoom`` > 0 zooms in (the overview shows)."""
    os.environ.setdefault("SEGSTUDIO_CONFIG_DIR", tempfile.mkdtemp())
    folder = Path(tempfile.mkdtemp()) / "camvid-val"
    folder.mkdir()
    frames = sorted((camvid / "val").iterdir())[60:72]
    for f in frames:
        (folder / f.name).symlink_to(f.resolve())
    labelset = LabelSet.load(camvid / "classes.json")
    painted = [labelset.names.index(n) for n in ("Road", "Pavement", "Car")]
    with Project.open(folder) as project:
        project.scan()
        project.set_labelset(labelset)
        for i in (0, 1, 2, 3):
            labels = read_label_map(camvid / "valannot" / frames[i].name)
            labels = np.where(labels == 11, UNLABELED, labels).astype(np.uint8)
            if i == 2:  # in progress: three classes painted so far
                labels = np.where(np.isin(labels, painted), labels, UNLABELED).astype(np.uint8)
            project.save_labels(frames[i].name, labels, user="camvid")
            if i != 2:
                project.set_status(frames[i].name, ImageStatus.REVIEWED)

    app = QApplication(sys.argv[:1])
    win = MainWindow()
    screen = app.primaryScreen()
    win.setGeometry(screen.availableGeometry())  # as maximised (Xvfb has no window manager)
    win.show()
    shown = frames[2].name

    def shoot() -> None:
        win.open_folder(folder)
        win.images.select(shown)
        win.palette.choose(labelset.names.index("Car"))
        QTimer.singleShot(300, wait_for_prediction)

    def wait_for_prediction() -> None:
        doc = win.doc
        if doc is None or doc.name != shown or doc.prediction is None:
            QTimer.singleShot(200, wait_for_prediction)
            return
        win.size_docks()
        win.canvas.fit()
        if zoom:
            win.canvas.zoom_by(zoom)
            win.canvas.centerOn(QPointF(330.5, 250.5))  # the road and the cyclists
        win.statusBar().showMessage("")
        QTimer.singleShot(800, grab)

    grab = _grabber(app, win, out, QPointF(330.5, 250.5), settle_ms=600)

    QTimer.singleShot(300, shoot)
    app.exec()


if __name__ == "__main__":
    main()
