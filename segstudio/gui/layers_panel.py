"""The layers panel: visibility, opacity and outline view of each canvas layer."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QGridLayout, QLabel, QSlider, QWidget

from segstudio.gui.canvas import Layer


@dataclass
class LayerState:
    visible: bool
    opacity: float
    outline: bool = False


DEFAULTS = {
    Layer.IMAGE: LayerState(True, 1.0),
    Layer.LABELS: LayerState(True, 0.6),
    Layer.PREDICTION: LayerState(True, 0.35),
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
        for row, layer in enumerate(
            (Layer.CONFIDENCE, Layer.LABELS, Layer.PREDICTION, Layer.IMAGE), start=1
        ):
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
