"""The layers panel: visibility, opacity and outline view of each canvas layer.

Each mask layer's check box shows how the layer looks (labels solid with a
border, the prediction hatched), and the confidence layer has a legend: a
bar from 0 (the model is unsure: orange-red) to 1 (sure: clear).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPaintEvent, QPen, QPixmap
from PySide6.QtWidgets import QCheckBox, QGridLayout, QLabel, QSlider, QWidget

from segstudio.gui.canvas import Layer
from segstudio.gui.overlay import (
    HATCH_GAP_ALPHA,
    HATCH_PERIOD,
    HATCH_WIDTH,
    desaturated,
    heat_table,
    legend_image,
)

#: The colour of the style icons (a class colour that reads on light and dark themes).
SAMPLE_COLOR = (64, 160, 255)


@dataclass
class LayerState:
    visible: bool
    opacity: float
    outline: bool = False


DEFAULTS = {
    Layer.IMAGE: LayerState(True, 1.0),
    Layer.LABELS: LayerState(True, 0.6),
    Layer.PREDICTION: LayerState(True, 0.5),
    Layer.CONFIDENCE: LayerState(False, 0.6),
}
MASK_LAYERS = (Layer.LABELS, Layer.PREDICTION)


class LayersPanel(QWidget):
    """One row per layer; emits ``changed(layer)`` after any of its settings change."""

    changed = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("layersPanel")
        self.state = {layer: LayerState(**vars(s)) for layer, s in DEFAULTS.items()}
        grid = QGridLayout(self)
        grid.setContentsMargins(4, 4, 4, 4)
        grid.addWidget(QLabel("<b>Layer</b>"), 0, 0)
        grid.addWidget(QLabel("<b>Opacity</b>"), 0, 1)
        grid.addWidget(QLabel("<b>Outline</b>"), 0, 2)
        self.visible: dict[Layer, QCheckBox] = {}
        self.opacity: dict[Layer, QSlider] = {}
        self.outline: dict[Layer, QCheckBox] = {}
        # top-most first, as layer panels show them
        row = 0
        for layer in (Layer.CONFIDENCE, Layer.LABELS, Layer.PREDICTION, Layer.IMAGE):
            row += 1
            st = self.state[layer]
            key = layer.name.lower()
            box = QCheckBox(layer.value)
            box.setObjectName(f"layer_{key}_visible")
            box.setChecked(st.visible)
            box.toggled.connect(lambda on, lay=layer: self._set(lay, visible=on))
            slider = QSlider(Qt.Orientation.Horizontal)
            slider.setObjectName(f"layer_{key}_opacity")
            slider.setRange(0, 100)
            slider.setValue(round(st.opacity * 100))
            slider.valueChanged.connect(lambda v, lay=layer: self._set(lay, opacity=v / 100))
            if layer in MASK_LAYERS:
                box.setIcon(style_icon(hatched=layer is Layer.PREDICTION))
                box.setToolTip(
                    "Predicted by the model, hatched: shown where nobody labelled"
                    if layer is Layer.PREDICTION
                    else "Your labels: solid, with a border"
                )
            grid.addWidget(box, row, 0)
            grid.addWidget(slider, row, 1)
            self.visible[layer], self.opacity[layer] = box, slider
            if layer in MASK_LAYERS:
                ol = QCheckBox()
                ol.setObjectName(f"layer_{key}_outline")
                ol.setToolTip("Show only the outlines of the regions")
                ol.toggled.connect(lambda on, lay=layer: self._set(lay, outline=on))
                grid.addWidget(ol, row, 2)
                self.outline[layer] = ol
            if layer is Layer.CONFIDENCE:  # its legend, under its slider
                row += 1
                self.legend = HeatLegend()
                grid.addWidget(self.legend, row, 1)
        grid.setRowStretch(grid.rowCount(), 1)

    def _set(self, layer: Layer, **changes: object) -> None:
        for key, value in changes.items():
            setattr(self.state[layer], key, value)
        self.changed.emit(layer)

    def to_dict(self) -> dict[str, dict[str, object]]:
        return {layer.name.lower(): vars(st).copy() for layer, st in self.state.items()}

    def restore(self, data: object) -> None:
        """Set the widgets from :meth:`to_dict` output; what it lacks (a project never
        shown yet, a bad entry) gets the default."""
        layers = data if isinstance(data, dict) else {}
        for layer in Layer:
            entry = layers.get(layer.name.lower())
            entry = entry if isinstance(entry, dict) else {}
            visible, opacity = entry.get("visible"), entry.get("opacity")
            if not isinstance(visible, bool):
                visible = DEFAULTS[layer].visible
            if not isinstance(opacity, int | float) or isinstance(opacity, bool):
                opacity = DEFAULTS[layer].opacity
            self.visible[layer].setChecked(visible)
            self.opacity[layer].setValue(round(float(opacity) * 100))
            if layer in self.outline:
                outline = entry.get("outline")
                self.outline[layer].setChecked(outline if isinstance(outline, bool) else False)

    def toggle(self, layer: Layer) -> None:
        self.visible[layer].toggle()

    def set_visible(self, layer: Layer, on: bool) -> None:
        self.visible[layer].setChecked(on)

    def set_outline(self, layer: Layer, on: bool) -> None:
        """Outline only (a mask layer); other layers have no outline view."""
        if layer in self.outline:
            self.outline[layer].setChecked(on)


def style_icon(*, hatched: bool, size: int = 16) -> QIcon:
    """A sample of a mask layer's look: solid with a border (labels) or hatched
    (prediction), in one class colour."""
    dpr = 2
    pix = QPixmap(size * dpr, size * dpr)
    pix.setDevicePixelRatio(dpr)
    pix.fill(Qt.GlobalColor.transparent)
    p = QPainter(pix)
    box = QRect(1, 1, size - 2, size - 2)
    if hatched:
        pale = desaturated(np.array([SAMPLE_COLOR], np.float32))[0]
        color = QColor(*(int(v) for v in np.rint(pale)))
        faint = QColor(color)
        faint.setAlphaF(0.5 * HATCH_GAP_ALPHA + 0.2)
        p.fillRect(box, faint)
        p.setClipRect(box)
        p.setPen(QPen(color, HATCH_WIDTH * 0.8))
        for k in range(-size, 2 * size, HATCH_PERIOD // 2 + 1):
            p.drawLine(k, size, k + size, 0)
    else:
        fill = QColor(*SAMPLE_COLOR)
        fill.setAlphaF(0.6)
        p.fillRect(box, fill)
        p.setPen(QPen(QColor(*SAMPLE_COLOR), 2))
        p.drawRect(box.adjusted(1, 1, -1, -1))
    p.end()
    return QIcon(pix)


class HeatLegend(QWidget):
    """The confidence layer's legend: its colours from 0 (unsure) to 1 (sure)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("confidenceLegend")
        self.setToolTip(
            "Confidence of the prediction: orange-red where the model is unsure (0), "
            "clear where it is sure (1)"
        )
        self.setMinimumSize(64, 22)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return QSize(96, 24)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        fm = p.fontMetrics()
        w, h = self.width(), self.height()
        pad = fm.horizontalAdvance("0") + 4
        bar = QRect(pad, 2, max(w - 2 * pad, 8), max(h - 4, 6))
        image = legend_image(heat_table(1.0), bar.width(), 1, QColor(128, 128, 128))
        p.drawImage(bar, image)
        p.setPen(self.palette().color(self.foregroundRole()))
        p.drawRect(bar.adjusted(0, 0, -1, -1))
        middle = Qt.AlignmentFlag.AlignVCenter
        p.drawText(QRect(0, 0, pad - 2, h), middle | Qt.AlignmentFlag.AlignRight, "0")
        p.drawText(QRect(w - pad + 2, 0, pad, h), middle | Qt.AlignmentFlag.AlignLeft, "1")
        p.end()
