"""Fine-tuning in the window: the options dialog and the live training panel.

The panel only shows what the training generator reports
(:class:`~segstudio.training.loop.TrainProgress`): step, epoch, time left,
a live plot of the loss and the validation mIoU (pyqtgraph), per-class IoU,
and at the end the before/after comparison with a button that makes the
new model active.
"""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from segstudio.gui.theme import is_dark
from segstudio.session.training import FineTuneRequest, NewArch, StartFrom, Validation

#: Architectures offered for a new model: (label, arch name, params).
NEW_ARCHS: tuple[tuple[str, str, dict[str, float]], ...] = (
    ("SegNet (VGG16-BN)", "segnet", {}),
    ("SegNet, half width", "segnet", {"width": 0.5}),
    ("SegNet, quarter width", "segnet", {"width": 0.25}),
    ("SegNet-Basic", "segnet_basic", {}),
    ("U-Net, half width", "unet", {"width": 0.5}),
    ("U-Net, quarter width", "unet", {"width": 0.25}),
    ("FCN-8s (VGG16-BN), half width", "fcn8s", {"width": 0.5}),
    ("DeconvNet (VGG16-BN), half width", "deconvnet", {"width": 0.5}),
    ("DeepLab (dilated VGG16-BN, ASPP), half width", "deeplab", {"width": 0.5}),
    ("DeepLab, quarter width", "deeplab", {"width": 0.25}),
    ("PSPNet (dilated VGG16-BN), half width", "pspnet", {"width": 0.5}),
)


class FineTuneDialog(QDialog):
    """Options of a fine-tune run; the defaults are what the Fine-tune action uses."""

    def __init__(self, parent: QWidget | None, *, start_label: str | None, marked_val: int) -> None:
        """``start_label`` names the model a fine-tune would start from (None: there is none)."""
        super().__init__(parent)
        self.setObjectName("fineTuneDialog")
        self.setWindowTitle("Fine-tune")
        form = QFormLayout(self)
        self.start = QComboBox()
        self.start.setObjectName("fineTuneStart")
        if start_label is not None:
            self.start.addItem(start_label, True)
        self.start.addItem("A new model", False)
        self.arch = QComboBox()
        self.arch.setObjectName("fineTuneArch")
        for label, name, params in NEW_ARCHS:
            self.arch.addItem(label, (name, params))
        self.arch.setCurrentIndex(1)
        self.limit = QComboBox()
        self.limit.setObjectName("fineTuneLimit")
        self.limit.addItems(["Epochs", "Minutes"])
        self.limit.setCurrentText("Minutes")
        self.amount = QDoubleSpinBox()
        self.amount.setObjectName("fineTuneAmount")
        self.amount.setRange(0.1, 10000)
        self.amount.setDecimals(1)
        self.amount.setValue(5)  # the one-click Fine-tune's budget
        self.lr = QDoubleSpinBox()
        self.lr.setObjectName("fineTuneLr")
        self.lr.setDecimals(5)
        self.lr.setRange(1e-5, 1.0)
        self.lr.setSingleStep(1e-4)
        self.lr.setValue(1e-3)
        self.batch = QSpinBox()
        self.batch.setObjectName("fineTuneBatch")
        self.batch.setRange(1, 64)
        self.batch.setValue(4)
        self.freeze = QCheckBox("Freeze the encoder (train the decoder only)")
        self.freeze.setObjectName("fineTuneFreeze")
        self.validation = QComboBox()
        self.validation.setObjectName("fineTuneValidation")
        self.validation.addItem("An automatic 15 % of the labelled images", Validation.AUTO.value)
        if marked_val:
            self.validation.addItem(
                f"The {marked_val} image(s) marked for validation", Validation.MARKED.value
            )
            self.validation.setCurrentIndex(1)
        form.addRow("Start from", self.start)
        form.addRow("New model", self.arch)
        row = QHBoxLayout()
        row.addWidget(self.amount)
        row.addWidget(self.limit)
        form.addRow("Train for", row)
        form.addRow("Learning rate", self.lr)
        form.addRow("Batch size", self.batch)
        form.addRow("", self.freeze)
        form.addRow("Validate on", self.validation)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Start")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.start.currentIndexChanged.connect(self._sync)
        self._sync()

    def _sync(self) -> None:
        self.arch.setEnabled(not self.start.currentData())

    def request(self) -> FineTuneRequest:
        """The fine-tune the dialog describes."""
        options: dict[str, float | int | bool | str] = {
            "lr": self.lr.value(),
            "batch_size": self.batch.value(),
            "freeze_encoder": self.freeze.isChecked(),
        }
        if self.limit.currentText() == "Minutes":
            options["minutes"] = self.amount.value()
        else:
            options["epochs"] = max(1, round(self.amount.value()))
        name, params = self.arch.currentData()
        return FineTuneRequest(
            options=options,
            start=StartFrom.ACTIVE if self.start.currentData() else StartFrom.NEW,
            arch=NewArch(name, dict(params)),
            validation=Validation(self.validation.currentData()),
        )


def _fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"


#: Rows of the per-class IoU table shown when it is empty; a filled table shows every
#: row (up to :data:`TABLE_MAX_ROWS`; the panel itself scrolls in a short dock).
TABLE_ROWS = 6
TABLE_MAX_ROWS = 40
#: The curves' colours (loss, mIoU) on a light and on a dark theme.
CURVES = {False: ((25, 100, 200), (20, 140, 60)), True: ((80, 160, 255), (80, 200, 110))}


class TrainingPanel(QWidget):
    """Live view of a training run; ``cancelRequested`` and ``useModelRequested`` go out.

    The plots start empty for each run, with axes from 0 (steps to the run's
    end when known); a single point sits inside them, not on a degenerate
    range. The panel scrolls as a whole in a short dock, so the per-class
    table keeps its rows.
    """

    cancelRequested = Signal()  # noqa: N815 - Qt naming
    useModelRequested = Signal()  # noqa: N815

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("trainingPanel")
        self.status = QLabel("No training run yet. Model → Fine-tune (Ctrl+T).")
        self.status.setObjectName("trainingStatus")
        self.status.setWordWrap(True)
        pg.setConfigOptions(antialias=True)
        self.loss_plot = _plot("lossPlot")
        self.loss_curve = self.loss_plot.plot(symbol="o", symbolSize=4)
        self.miou_plot = _plot("miouPlot")
        self.miou_curve = self.miou_plot.plot(symbol="o", symbolSize=5)
        self._restyle()  # titles, colours; again when the theme changes
        self.table_title = QLabel("Per-class IoU")
        self.table_title.setObjectName("perClassTitle")
        self.table_title.setWordWrap(True)  # a narrow dock: it wraps, never widens the panel
        self.table = QTableWidget(0, 2)
        self.table.setObjectName("perClassIou")
        self.table.setHorizontalHeaderLabels(["Class", "IoU"])
        header = self.table.horizontalHeader()  # the table fits the dock's width
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self._fit_table(TABLE_ROWS)
        self.result = QLabel()
        self.result.setObjectName("trainingResult")
        self.result.setWordWrap(True)
        self.cancel = QPushButton("Cancel")
        self.cancel.setToolTip("Stop the training; no model is stored")
        self.cancel.setObjectName("trainingCancel")
        self.cancel.clicked.connect(self.cancelRequested)
        self.use = QPushButton("Use this model")
        self.use.setToolTip("Make the new model active and re-predict the unreviewed images")
        self.use.setObjectName("useTrainedModel")
        self.use.clicked.connect(self.useModelRequested)
        inner = QWidget()
        layout = QVBoxLayout(inner)
        layout.setContentsMargins(4, 4, 4, 4)
        widgets = (self.status, self.loss_plot, self.miou_plot, self.table_title, self.table)
        for w in (*widgets, self.result):
            layout.addWidget(w)
        buttons = QHBoxLayout()
        buttons.addWidget(self.cancel)
        buttons.addWidget(self.use)
        layout.addLayout(buttons)
        layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setObjectName("trainingScroll")
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(inner)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        self._loss: tuple[list[float], list[float]] = ([], [])
        self._miou: tuple[list[float], list[float]] = ([], [])
        self._total_steps: int | None = None
        self.class_names: tuple[str, ...] = ()
        self.set_running(False)
        self.use.setVisible(False)
        self._set_ranges()

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt API
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:  # the theme changed: so do the plots
            self._restyle()

    def _restyle(self) -> None:
        """The plots in the theme's colours (pyqtgraph's own are white on black)."""
        pal = self.palette()
        ink = pal.color(QPalette.ColorRole.WindowText)
        back = pal.color(QPalette.ColorRole.Base)
        plots = (
            (self.loss_plot, self.loss_curve, "Training loss"),
            (self.miou_plot, self.miou_curve, "Validation mIoU"),
        )
        for (plot, curve, title), rgb in zip(plots, CURVES[is_dark(pal)], strict=True):
            plot.setBackground(back)
            plot.setTitle(title, color=ink.name())
            plot.setLabel("bottom", "step", color=ink.name())
            for side in ("left", "bottom"):
                plot.getAxis(side).setPen(ink)
                plot.getAxis(side).setTextPen(ink)
            colour = QColor(*rgb)
            curve.setPen(pg.mkPen(colour, width=1.5))
            curve.setSymbolPen(pg.mkPen(colour))
            curve.setSymbolBrush(colour)

    def start(self, class_names: tuple[str, ...], what: str) -> None:
        """A new run: empty plots and table, axes from the start again."""
        self.class_names = class_names
        self._loss = ([], [])
        self._miou = ([], [])
        self._total_steps = None
        self.loss_curve.setData([], [])
        self.miou_curve.setData([], [])
        self._set_ranges()
        self.table.setRowCount(0)
        self.table_title.setText("Per-class IoU")
        self.result.setText("")
        self.use.setVisible(False)
        self.status.setText(f"Starting: {what}")
        self.set_running(True)

    def set_running(self, running: bool) -> None:
        self.cancel.setEnabled(running)

    def progress(self, p: Any) -> None:
        """Show one :class:`TrainProgress`."""
        if p.total_steps:
            self._total_steps = p.total_steps
        if p.kind == "step":
            if p.loss is not None:
                self._loss[0].append(p.step)
                self._loss[1].append(p.loss)
                self.loss_curve.setData(*self._loss)
                self._set_ranges()
            total = f"/{p.total_steps}" if p.total_steps else ""
            speed = f"{p.images_per_s:.1f} img/s" if p.images_per_s else ""
            loss = f"loss {p.loss:.3f}" if p.loss is not None else ""
            self.status.setText(
                f"step {p.step}{total} · epoch {p.epoch} · {loss} · {speed} · "
                f"time left {_fmt_time(p.eta_s)}"
            )
        elif p.kind == "validation" and p.metrics:
            self._miou[0].append(p.step)
            self._miou[1].append(p.metrics.get("mean_iou", 0.0))
            self.miou_curve.setData(*self._miou)
            self._set_ranges()
            self.table_title.setText(f"Per-class IoU at step {p.step}")
            self._show_per_class(p.metrics.get("per_class_iou") or [])
        elif p.kind == "checkpoint":
            self.status.setText(f"step {p.step}: checkpoint saved (a crash can resume from here)")
        elif p.message:
            self.status.setText(p.message)

    def _set_ranges(self) -> None:
        """Axes from 0: steps up to the run's end when known (else a bit past the last
        point), loss up to its largest value, mIoU 0..1."""
        steps = self._loss[0] + self._miou[0]
        last = max(steps, default=0)
        end = self._total_steps or max(10, int(last * 1.25) + 1)
        top = max(self._loss[1], default=0.0)
        self.loss_plot.setXRange(0, max(end, last), padding=0.02)
        self.loss_plot.setYRange(0, top * 1.1 if top > 0 else 1.0, padding=0.02)
        self.miou_plot.setXRange(0, max(end, last), padding=0.02)
        self.miou_plot.setYRange(0, 1, padding=0.02)

    def show_final(self, metrics: dict[str, Any] | None) -> None:
        """The stored model's validation (the weights kept, which may be the starting
        model's or an earlier epoch's), in place of the last validation's."""
        if not metrics:
            return
        self.table_title.setText(
            f"Per-class IoU of the stored model (mIoU {metrics.get('mean_iou', 0.0):.3f})"
        )
        self._show_per_class(metrics.get("per_class_iou") or [])

    def _fit_table(self, rows: int) -> None:
        """Make the table tall enough for ``rows`` rows: no scroll bar of its own inside the
        panel's (at most :data:`TABLE_MAX_ROWS`)."""
        shown = min(max(rows, TABLE_ROWS), TABLE_MAX_ROWS)
        header = self.table.horizontalHeader().sizeHint().height()
        row = self.table.verticalHeader().defaultSectionSize()
        self.table.setFixedHeight(row * shown + header + 2 * self.table.frameWidth() + 2)

    def _show_per_class(self, ious: list[float | None]) -> None:
        self.table.setRowCount(len(ious))
        self._fit_table(len(ious))
        for i, iou in enumerate(ious):
            name = self.class_names[i] if i < len(self.class_names) else str(i)
            self.table.setItem(i, 0, QTableWidgetItem(name))
            item = QTableWidgetItem("–" if iou is None else f"{iou:.3f}")
            item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.table.setItem(i, 1, item)

    def hide_use(self) -> None:
        """No trained model to offer (the project closed)."""
        self.use.setVisible(False)

    def used(self, text: str) -> None:
        """The trained model was made active: nothing left to offer."""
        self.use.setVisible(False)
        self.result.setText(text)

    def finish(self, text: str, *, can_use: bool, verdict: str | None = None) -> None:
        """The run ended: ``verdict`` (the run's, if it has one) heads the panel, in sight
        without scrolling; ``text`` says the rest below the table."""
        self.set_running(False)
        if verdict:
            self.status.setText(f"Finished: {verdict}.")
        else:
            self.status.setText("Finished." if can_use else "Stopped.")
        self.result.setText(text)
        self.use.setVisible(can_use)


def _plot(name: str) -> pg.PlotWidget:
    """A plot of a value over training steps, with axes the panel sets itself."""
    # No context menu: the plots are read-only (no zoom, no pan). pyqtgraph still builds
    # the plot's options menu as a window of its own, without a parent; it is parented
    # here so it goes with the panel, not whenever Python's garbage collector runs.
    plot = pg.PlotWidget(enableMenu=False)
    plot.getPlotItem().ctrlMenu.setParent(plot, Qt.WindowType.Popup)
    plot.setObjectName(name)
    plot.setFixedHeight(150)  # in a short dock the panel scrolls; the plots keep their size
    plot.setMouseEnabled(x=False, y=False)
    plot.disableAutoRange()
    plot.hideButtons()
    return plot
