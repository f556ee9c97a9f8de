"""How the canvas layers look: the colour tables, visibility, opacity and outlines.

The layers panel says what the user chose; this controller applies it to the
canvas. The mask layers' colour tables carry the opacity and the classes the
palette hides, so a change there rebuilds a 256-entry table, never the
pixels. The View menu's layer toggles (and O, the labels' outline) stay in
step with the panel both ways.

Labels and predictions are drawn so that nobody takes one for the other:
labels solid with their borders in the full class colour, the prediction
paler and hatched, and only where no label is shown (a hidden or fully
transparent labels layer lets the whole prediction through).
"""

from __future__ import annotations

from collections.abc import Mapping

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction

from segstudio.gui.canvas import Canvas, Layer
from segstudio.gui.layers_panel import LayersPanel
from segstudio.gui.overlay import edge_table, hatch_tables, heat_table, palette_table
from segstudio.gui.palette_panel import PalettePanel
from segstudio.gui.ui import set_quietly


class LayerView(QObject):
    """Applies the layers panel and the palette's hidden classes to the canvas."""

    def __init__(
        self,
        canvas: Canvas,
        panel: LayersPanel,
        palette: PalettePanel,
        toggles: Mapping[Layer, QAction],
        outline: QAction,
    ) -> None:
        """``toggles`` show or hide a layer; ``outline`` is the labels' outline view."""
        super().__init__(canvas)
        self.canvas, self.panel, self.palette = canvas, panel, palette
        self._toggles, self._outline = dict(toggles), outline
        self._hidden: frozenset[int] = frozenset()
        for layer, action in self._toggles.items():
            action.toggled.connect(lambda on, lay=layer: panel.set_visible(lay, on))
        outline.toggled.connect(lambda on: panel.set_outline(Layer.LABELS, on))
        panel.changed.connect(self.apply)
        palette.hiddenChanged.connect(self._set_hidden)

    def restore(self, layers: object) -> None:
        """The panel's settings as a project stored them (see ``LayersPanel.to_dict``);
        the canvas shows what the panel says."""
        self.panel.restore(layers)
        for layer in Layer:
            self.apply(layer)

    def refresh_tables(self) -> None:
        """Rebuild the colour tables (the classes, their colours or an opacity changed)."""
        ls = self.palette.labelset
        if ls is None:
            return
        st = self.panel.state
        palette = ls.palette()
        labels = st[Layer.LABELS]
        stripes, faint = hatch_tables(palette, st[Layer.PREDICTION].opacity, self._hidden)
        self.canvas.set_tables(
            palette_table(palette, labels.opacity, self._hidden),
            stripes,
            heat_table(st[Layer.CONFIDENCE].opacity),
            labels_edge=edge_table(palette, labels.opacity, self._hidden),
            prediction_faint=faint,
        )
        self.canvas.set_prediction_masked(labels.visible and labels.opacity > 0)

    def apply(self, layer: Layer) -> None:
        """Show ``layer`` as the panel says, and keep its menu toggles in step."""
        st = self.panel.state[layer]
        self.canvas.style_layer(layer, st.visible, st.opacity, st.outline)
        if layer is not Layer.IMAGE:
            self.refresh_tables()
        if layer is Layer.LABELS:  # O toggles the labels' outline
            set_quietly(self._outline, st.outline)
        if layer in self._toggles:
            set_quietly(self._toggles[layer], st.visible)

    def _set_hidden(self, hidden: frozenset[int]) -> None:
        self._hidden = hidden
        self.refresh_tables()
