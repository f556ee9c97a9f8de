"""Brush latency in the real window: time per mouse-move event, edit + repaint.

A project with one large image is opened in the window (Qt offscreen), and a
brush stroke is dragged across it with real mouse events. Each move is timed
from the event to the end of the repaint it causes (``processEvents`` after
the move; Qt may fold several moves into one paint, which then counts in the
move that ran it, so the p95 holds the paint cost). Two zoom levels: the
whole image fitted in the window, and 1:1.

Baseline, in the same run: the common naive overlay -- after each edit, the
whole label map is coloured and uploaded as a new pixmap (what many labelling
tools do), through the same edit path.

Prints one JSON object.
Run: ``python benchmarks/bench_brush.py [--moves N] [--sizes 4000x3000 ...]``
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
from typing import ClassVar

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
from PIL import Image
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QGraphicsPixmapItem

from segstudio.gui.main_window import MainWindow
from segstudio.gui.overlay import MapItem


def _stats(ms: list[float]) -> dict[str, float]:
    ms = sorted(ms)
    return {
        "median_ms": round(statistics.median(ms), 3),
        "p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 3),
        "max_ms": round(ms[-1], 3),
    }


def _stroke_points(w: int, h: int, moves: int, zoom: float) -> list[tuple[float, float]]:
    """A wavy stroke across the visible part: about 6 screen pixels per move."""
    step = 6.0 / zoom
    x0, y0 = w * 0.3, h * 0.5
    return [(x0 + i * step, y0 + 40.0 / zoom * np.sin(i / 10)) for i in range(moves)]


class _PaintCounter:
    """Counts paints of one map item, to show that the moves really repaint.

    PySide looks up Python overrides when an item is created, so the counting
    ``paint`` is installed on the class once, before any window exists.
    """

    counts: ClassVar[dict[int, int]] = {}
    _installed = False

    @classmethod
    def install(cls) -> None:
        if cls._installed:
            return
        original = MapItem.paint

        def paint(item, *args):
            cls.counts[id(item)] = cls.counts.get(id(item), 0) + 1
            return original(item, *args)

        MapItem.paint = paint
        cls._installed = True

    @classmethod
    def of(cls, item: MapItem) -> int:
        return cls.counts.get(id(item), 0)


def _run_stroke(app: QApplication, win: MainWindow, points, naive: QGraphicsPixmapItem | None):
    vp = win.canvas.viewport()
    pos = [win.canvas.mapFromScene(QPointF(x, y)) for x, y in points]
    times = []
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pos[0])
    app.processEvents()
    doc = win.doc
    for p in pos[1:]:
        t0 = time.perf_counter()
        QTest.mouseMove(vp, p)
        if naive is not None:  # the naive overlay: recolour and re-upload everything
            table = win.canvas.labels_item._table
            argb = table[doc.labels]
            h, w = argb.shape
            img = QImage(argb.data, w, h, 4 * w, QImage.Format.Format_ARGB32_Premultiplied)
            naive.setPixmap(QPixmap.fromImage(img))
        app.processEvents()
        times.append((time.perf_counter() - t0) * 1000)
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pos[-1])
    app.processEvents()
    return times


def bench_size(app: QApplication, w: int, h: int, moves: int, baseline_moves: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rng = np.random.default_rng(0)
        small = rng.integers(0, 256, (h // 50 + 1, w // 50 + 1, 3), dtype=np.uint8)
        img = np.asarray(Image.fromarray(small).resize((w, h), Image.Resampling.BILINEAR))
        Image.fromarray(img).save(folder / "big.png", compress_level=1)
        win = MainWindow()
        win.resize(1400, 900)
        win.show()
        t0 = time.perf_counter()
        win.open_folder(folder)
        while win.doc is None:
            app.processEvents()
        app.processEvents()
        open_s = time.perf_counter() - t0
        win.canvas.set_brush_radius(max(w, h) / 400)
        out: dict = {
            "image": [w, h],
            "open_image_s": round(open_s, 2),
            "brush_radius": win.canvas.brush_radius,
        }
        for label, zoom in (("fit", None), ("1:1", 1.0)):
            if zoom is None:
                win.canvas.fit()
            else:
                win.canvas.zoom_to(zoom)
                win.canvas.centerOn(w * 0.5, h * 0.5)
            app.processEvents()
            scale = win.canvas.scale_factor
            pts = _stroke_points(w, h, moves, scale)
            if zoom is not None:
                pts = [
                    (w * 0.5 - 300 + i * 6.0, h * 0.5 + 40 * np.sin(i / 10)) for i in range(moves)
                ]
            paints = _PaintCounter.of(win.canvas.labels_item)
            ours = _run_stroke(app, win, pts, None)
            paints = _PaintCounter.of(win.canvas.labels_item) - paints
            naive_item = QGraphicsPixmapItem()
            naive_item.setZValue(2.5)
            win.canvas.scene().addItem(naive_item)
            base = _run_stroke(app, win, pts[:baseline_moves], naive_item)
            win.canvas.scene().removeItem(naive_item)
            o, b = _stats(ours), _stats(base)
            out[label] = {
                "zoom": round(scale, 4),
                "segstudio": o,
                "naive_full_redraw": b,
                "p95_speedup": round(b["p95_ms"] / max(o["p95_ms"], 1e-6), 1),
                "moves": len(ours),
                "label_layer_paints": paints,
            }
        win.close()
        app.processEvents()
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--moves", type=int, default=300)
    ap.add_argument("--baseline-moves", type=int, default=20)
    ap.add_argument("--sizes", nargs="*", default=["4000x3000", "12000x9000"])
    args = ap.parse_args()
    cfg = tempfile.mkdtemp()
    os.environ["SEGSTUDIO_CONFIG_DIR"] = cfg
    app = QApplication.instance() or QApplication(sys.argv[:1])
    _PaintCounter.install()
    results = []
    for size in args.sizes:
        w, h = (int(v) for v in size.split("x"))
        results.append(bench_size(app, w, h, args.moves, args.baseline_moves))
    print(json.dumps({"benchmark": "brush", "target_p95_ms": 8, "results": results}, indent=2))
    sys.stdout.flush()
    # skip interpreter teardown: PySide6 can crash collecting the test windows' leftovers
    os._exit(0)


if __name__ == "__main__":
    main()
