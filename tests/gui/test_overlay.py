"""How the canvas draws labels, predictions, confidence and the brush outline.

Labels and predictions must look different at a glance (labels solid with a
border, the prediction hatched and only where nobody labelled), the brush
outline must show on any background at any zoom, and an edit repaints only
its rectangle. Pixels are read back from the real view.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QAction, QColor, QImage
from PySide6.QtWidgets import QGraphicsScene, QGraphicsView

from segstudio.core.labelset import UNLABELED, LabelClass, LabelSet
from segstudio.gui.canvas import Canvas, Layer, Tool
from segstudio.gui.layer_view import LayerView
from segstudio.gui.layers_panel import HeatLegend, LayersPanel
from segstudio.gui.overlay import (
    HATCH_PERIOD,
    MIN_CURSOR_PX,
    MapItem,
    edge_table,
    hatch_tables,
    heat_table,
    legend_image,
    palette_table,
)
from segstudio.gui.palette_panel import PalettePanel

RED, BLUE = (220, 30, 30), (30, 60, 220)
LABELSET = LabelSet("two", (LabelClass("Red", RED), LabelClass("Blue", BLUE)))
H, W = 60, 120


def _alpha(entry: int) -> int:
    return int(entry) >> 24


def _rgb(image: QImage, x: int, y: int) -> tuple[int, int, int]:
    c = QColor(image.pixel(x, y))
    return (c.red(), c.green(), c.blue())


@pytest.fixture
def canvas(qtbot):
    """A canvas with the window's layer styles: a grey image, class 0 labelled in the left
    half, class 1 predicted everywhere (so the right half is prediction only)."""
    canvas = Canvas()
    qtbot.addWidget(canvas)
    canvas.resize(2 * W + 40, 2 * H + 40)
    panel, palette = LayersPanel(), PalettePanel()
    qtbot.addWidget(panel)
    qtbot.addWidget(palette)
    palette.set_labelset(LABELSET)
    toggles = {lay: QAction(canvas) for lay in (Layer.LABELS, Layer.PREDICTION, Layer.CONFIDENCE)}
    for action in toggles.values():
        action.setCheckable(True)
    view = LayerView(canvas, panel, palette, toggles, QAction(canvas))
    view.restore(None)
    canvas.set_image(np.full((H, W, 3), 128, np.uint8))
    labels = np.full((H, W), UNLABELED, np.uint8)
    labels[:, : W // 2] = 0
    canvas.set_labels(labels)
    canvas.set_prediction(np.ones((H, W), np.uint8), np.full((H, W), 255, np.uint8))
    canvas.show()
    qtbot.waitExposed(canvas)
    canvas.zoom_to(2.0)
    canvas.centerOn(W / 2, H / 2)
    canvas.panel, canvas.layer_view = panel, view  # for the tests
    return canvas


def _grab(canvas: Canvas) -> QImage:
    return canvas.viewport().grab().toImage()


def _row(canvas: Canvas, image: QImage, x0: float, x1: float, y: float) -> list:
    """Screen pixels along image row ``y`` between image columns x0 and x1."""
    a = canvas.mapFromScene(QPointF(x0, y))
    b = canvas.mapFromScene(QPointF(x1, y))
    return [_rgb(image, x, a.y()) for x in range(a.x(), b.x())]


def test_tables_make_labels_bolder_at_the_border_and_predictions_fainter() -> None:
    palette = LABELSET.palette()
    fill, edge = palette_table(palette, 0.6), edge_table(palette, 0.6)
    stripes, faint = hatch_tables(palette, 0.6)
    assert _alpha(edge[0]) > _alpha(fill[0]) > 0
    assert _alpha(stripes[1]) > _alpha(faint[1]) > 0
    assert _alpha(edge_table(palette, 0.0)[0]) == 0  # a hidden layer shows no border
    for table in (fill, edge, stripes, faint):
        assert _alpha(table[UNLABELED]) == 0
    hidden = palette_table(palette, 0.6, frozenset({1}))
    assert _alpha(hidden[1]) == 0 and _alpha(hidden[0]) > 0


def test_labels_are_solid_and_prediction_only_pixels_hatched(canvas: Canvas) -> None:
    image = _grab(canvas)
    y = H / 2 + 0.5
    labelled = _row(canvas, image, 5, W // 2 - 5, y)
    predicted = _row(canvas, image, W // 2 + 5, W - 5, y)
    assert len(set(labelled)) == 1  # solid: one colour inside a labelled region
    assert labelled[0][0] > labelled[0][2]  # red: the label, not the blue prediction below
    # hatched: the prediction alternates between stripes and gaps with the hatch period
    assert len(set(predicted)) == 2
    blues = [p[2] for p in predicted]
    strong = max(blues)
    period = [i for i, b in enumerate(blues) if b == strong and (i == 0 or blues[i - 1] != b)]
    assert len(period) >= 4  # several stripes across the half
    assert all(p[2] > p[0] for p in predicted)  # blue over grey, both stripes and gaps


def test_hatch_stripes_are_fixed_in_screen_pixels_at_any_zoom(canvas: Canvas) -> None:
    for scale in (1.0, 4.0):
        canvas.zoom_to(scale)
        canvas.centerOn(W * 0.75, H / 2)
        image = _grab(canvas)
        row = _row(canvas, image, W // 2 + 2, W - 2, H / 2 + 0.5)[: 4 * HATCH_PERIOD]
        strong = max(p[2] for p in row)
        on = [i for i, p in enumerate(row) if p[2] == strong]
        starts = [i for i in on if i > 0 and i - 1 not in on]  # whole stripes only
        assert len(starts) >= 3
        assert {b - a for a, b in itertools.pairwise(starts)} == {HATCH_PERIOD}


def test_labels_have_a_border_in_the_full_class_colour(canvas: Canvas) -> None:
    image = _grab(canvas)
    y = H / 2 + 0.5
    inside = _row(canvas, image, 10, 11, y)[0]
    # the last labelled column (W/2 - 1) borders the unlabelled half
    border = _row(canvas, image, W // 2 - 0.5, W // 2 - 0.25, y)[0]
    assert border != inside
    assert border[0] > inside[0]  # redder: more opaque than the fill


def test_prediction_shows_under_labels_only_when_labels_are_hidden(canvas: Canvas, qtbot) -> None:
    y = H / 2 + 0.5
    before = _row(canvas, _grab(canvas), 5, 25, y)
    assert all(p[0] > p[2] for p in before)  # red labels, no blue prediction through them
    canvas.panel.visible[Layer.LABELS].setChecked(False)
    after = _row(canvas, _grab(canvas), 5, 25, y)
    assert all(p[2] > p[0] for p in after)  # now the (blue) prediction shows there


def test_outline_view_of_labels_draws_only_borders(canvas: Canvas) -> None:
    canvas.panel.outline[Layer.LABELS].setChecked(True)
    image = _grab(canvas)
    y = H / 2 + 0.5
    inside = _row(canvas, image, 10, 11, y)[0]
    assert inside == (128, 128, 128)  # the image itself: no fill, no prediction (labelled)


def test_brush_outline_shows_on_white_and_black_and_at_any_zoom(canvas: Canvas) -> None:
    canvas.set_tool(Tool.BRUSH)
    for value in (255, 0):
        canvas.set_image(np.full((H, W, 3), value, np.uint8))
        canvas.set_labels(None)
        canvas.set_prediction(None, None)
        canvas.zoom_to(2.0)
        canvas.set_brush_radius(10)
        centre = QPointF(W / 2, H / 2)
        canvas.cursor_item.setVisible(True)
        canvas.cursor_item.set_brush(centre, canvas.brush_radius)
        image = _grab(canvas)
        c = canvas.mapFromScene(centre)
        ring = {_rgb(image, c.x() + dx, c.y() + dy) for dx in range(-22, 23) for dy in (-20, 20)}
        ring |= {_rgb(image, c.x() + dx, c.y() + dy) for dx in (-20, 20) for dy in range(-22, 23)}
        # two-tone: dark and light on the outline, whatever the background
        grey = [sum(p) / 3 for p in ring]
        assert min(grey) < 60 and max(grey) > 200
    # zoomed far out, a 1-pixel brush still gets an outline of a few screen pixels and a cross
    canvas.set_brush_radius(1)
    canvas.zoom_to(0.1)
    cursor = canvas.cursor_item
    assert cursor.tiny()
    assert cursor.shown_radius() * canvas.scale_factor == pytest.approx(MIN_CURSOR_PX)
    canvas.zoom_to(8.0)
    assert not cursor.tiny() and cursor.shown_radius() == cursor.radius


def test_an_edit_repaints_only_its_rectangle(qtbot) -> None:
    exposed: list[QRectF] = []

    class Recording(MapItem):
        def paint(self, painter, option, widget=None) -> None:
            exposed.append(QRectF(option.exposedRect))
            super().paint(painter, option, widget)

    values = np.full((400, 400), UNLABELED, np.uint8)
    item = Recording(values, palette_table(LABELSET.palette(), 0.6))
    item.set_table(item._table, edge=edge_table(LABELSET.palette(), 0.6))
    scene = QGraphicsScene()
    scene.addItem(item)
    view = QGraphicsView(scene)
    qtbot.addWidget(view)
    view.resize(450, 450)
    view.show()
    qtbot.waitExposed(view)
    qtbot.waitUntil(lambda: bool(exposed))
    exposed.clear()
    values[100:110, 200:210] = 1
    item.update_rect(100, 200, 110, 210)
    qtbot.waitUntil(lambda: bool(exposed))
    union = exposed[0]
    for r in exposed[1:]:
        union = union.united(r)
    assert union.contains(QRectF(200, 100, 10, 10))
    assert union.width() * union.height() < 0.01 * 400 * 400  # not the whole map


def test_confidence_legend_beside_the_confidence_layer(qtbot) -> None:
    panel = LayersPanel()
    qtbot.addWidget(panel)
    panel.show()
    qtbot.waitExposed(panel)
    legend = panel.findChild(HeatLegend, "confidenceLegend")
    assert legend is not None and legend.isVisible()
    assert "0" in legend.toolTip() and "1" in legend.toolTip()
    bar = legend_image(heat_table(1.0), 100, 4, QColor(128, 128, 128))
    low, high = QColor(bar.pixel(0, 0)), QColor(bar.pixel(99, 0))
    assert low.red() > low.blue() + 80  # 0: orange-red
    assert (high.red(), high.green(), high.blue()) == (128, 128, 128)  # 1: clear
    # the legend sits just under the Confidence row, in the opacity column
    grid = panel.layout()
    legend_row, legend_col, _, _ = grid.getItemPosition(grid.indexOf(legend))
    conf_row, _, _, _ = grid.getItemPosition(grid.indexOf(panel.visible[Layer.CONFIDENCE]))
    slider_col = grid.getItemPosition(grid.indexOf(panel.opacity[Layer.CONFIDENCE]))[1]
    assert (legend_row, legend_col) == (conf_row + 1, slider_col)
