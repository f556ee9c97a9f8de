"""Export and import dialogs: choose a format and a folder; the work runs in a worker."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

EXPORT_FORMATS = {
    "index": "Index PNGs (images/, labels/, classes.json, split lists)",
    "camvid": "CamVid / SegNet tutorial layout",
    "voc": "Pascal VOC (JPEGImages/, SegmentationClass/ palette PNGs)",
    "cityscapes": "Cityscapes (leftImg8bit/, gtFine/)",
    "coco": "COCO JSON with RLE masks",
}
IMPORT_FORMATS = {
    "index": "Index PNG masks (images/, labels/, classes.json)",
    "rgb": "Colour-coded masks with a palette (label_colors.txt or classes JSON)",
    "voc": "Pascal VOC palette PNGs",
    "camvid": "CamVid / SegNet layout",
    "cvat": "CVAT “Segmentation mask 1.1” export",
    "cityscapes": "Cityscapes",
    "coco": "COCO JSON",
}


def _folder_row(edit: QLineEdit, parent: QWidget, title: str, *, file: bool = False) -> QHBoxLayout:
    row = QHBoxLayout()
    row.addWidget(edit)
    browse = QPushButton("Browse…")

    def pick() -> None:
        if file:
            path, _ = QFileDialog.getOpenFileName(parent, title)
        else:
            path = QFileDialog.getExistingDirectory(parent, title)
        if path:
            edit.setText(path)

    browse.clicked.connect(pick)
    row.addWidget(browse)
    return row


def _buttons(dialog: QDialog, ok: str) -> QDialogButtonBox:
    box = QDialogButtonBox(
        QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
    )
    box.button(QDialogButtonBox.StandardButton.Ok).setText(ok)
    box.accepted.connect(dialog.accept)
    box.rejected.connect(dialog.reject)
    return box


@dataclass(frozen=True)
class ExportChoice:
    out: Path
    options: dict  # ExportOptions fields


class ExportDialog(QDialog):
    """Where and how to export the project's labels.

    It is kept for the project, so it opens with the choices made last time;
    a folder that holds files is not refused here: the window asks whether to
    replace it.
    """

    def __init__(self, parent: QWidget | None, default_out: Path) -> None:
        super().__init__(parent)
        self.setObjectName("exportDialog")
        self.setWindowTitle("Export dataset")
        form = QFormLayout(self)
        self.format = QComboBox()
        self.format.setObjectName("exportFormat")
        for key, text in EXPORT_FORMATS.items():
            self.format.addItem(text, key)
        self.out = QLineEdit(str(default_out))
        self.out.setObjectName("exportOut")
        self.shares = []
        shares_row = QHBoxLayout()
        for name, value in (("train", 0.8), ("val", 0.1), ("test", 0.1)):
            box = QDoubleSpinBox()
            box.setObjectName(f"exportShare_{name}")
            box.setRange(0.0, 1.0)
            box.setSingleStep(0.05)
            box.setValue(value)
            box.setPrefix(f"{name} ")
            shares_row.addWidget(box)
            self.shares.append(box)
        self.seed = QSpinBox()
        self.seed.setObjectName("exportSeed")
        self.seed.setRange(0, 2**31 - 1)
        self.predicted = QCheckBox("Also in-progress images, and predictions of unlabelled ones")
        self.predicted.setObjectName("exportIncludePredicted")
        self.void = QSpinBox()
        self.void.setObjectName("exportCamvidVoid")
        self.void.setRange(-1, 255)
        self.void.setValue(-1)
        self.void.setSpecialValueText("keep 255")
        self.colour = QCheckBox("Also colour-coded *_L.png and label_colors.txt")
        self.colour.setObjectName("exportCamvidColor")
        self.instances = QCheckBox("One annotation per connected region (instances)")
        self.instances.setObjectName("exportInstances")
        form.addRow("Format", self.format)
        form.addRow("Folder", _folder_row(self.out, self, "Export to"))
        form.addRow("Split", shares_row)
        form.addRow("Seed", self.seed)
        form.addRow("", self.predicted)
        form.addRow("CamVid void index", self.void)
        form.addRow("", self.colour)
        form.addRow("", self.instances)
        form.addRow(_buttons(self, "Export"))
        self.format.currentIndexChanged.connect(self._sync)
        self._sync()

    def _sync(self) -> None:
        fmt = self.format.currentData()
        self.void.setEnabled(fmt == "camvid")
        self.colour.setEnabled(fmt == "camvid")
        self.instances.setEnabled(fmt == "coco")

    def choice(self) -> ExportChoice:
        fmt = self.format.currentData()
        void = self.void.value()
        options = {
            "format": fmt,
            "split": tuple(round(b.value(), 4) for b in self.shares),
            "seed": self.seed.value(),
            "include_predicted": self.predicted.isChecked(),
            "camvid_void": void if fmt == "camvid" and void >= 0 else None,
            "camvid_color": fmt == "camvid" and self.colour.isChecked(),
            "instances": fmt == "coco" and self.instances.isChecked(),
        }
        return ExportChoice(Path(self.out.text()).expanduser(), options)


@dataclass(frozen=True)
class ImportChoice:
    source: Path
    format: str
    palette: Path | None
    void: int | None
    replace: bool = False


class ImportDialog(QDialog):
    """Which dataset to bring into the project (its masks arrive as reviewed labels)."""

    def __init__(self, parent: QWidget | None) -> None:
        super().__init__(parent)
        self.setObjectName("importDialog")
        self.setWindowTitle("Import dataset")
        form = QFormLayout(self)
        self.format = QComboBox()
        self.format.setObjectName("importFormat")
        for key, text in IMPORT_FORMATS.items():
            self.format.addItem(text, key)
        self.source = QLineEdit()
        self.source.setObjectName("importSource")
        self.palette = QLineEdit()
        self.palette.setObjectName("importPalette")
        self.palette.setPlaceholderText("label_colors.txt or classes.json (colour-coded masks)")
        self.void = QSpinBox()
        self.void.setObjectName("importVoid")
        self.void.setRange(-1, 255)
        self.void.setValue(-1)
        self.void.setSpecialValueText("none")
        form.addRow("Format", self.format)
        form.addRow("Dataset folder", _folder_row(self.source, self, "Import from"))
        form.addRow("Palette", _folder_row(self.palette, self, "Palette file", file=True))
        form.addRow("Void index", self.void)
        self.replace = QCheckBox("Replace labels of images that already have some")
        self.replace.setObjectName("importReplace")
        form.addRow("", self.replace)
        form.addRow(_buttons(self, "Import"))

    def choice(self) -> ImportChoice:
        palette = self.palette.text().strip()
        return ImportChoice(
            source=Path(self.source.text()).expanduser(),
            format=self.format.currentData(),
            palette=Path(palette).expanduser() if palette else None,
            void=self.void.value() if self.void.value() >= 0 else None,
            replace=self.replace.isChecked(),
        )
