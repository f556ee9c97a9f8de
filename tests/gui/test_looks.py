"""How the window looks on a 1366 x 768 laptop: the Presets button's arrow, long status
messages, the training plots in either theme, the model details' lineage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSize
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QApplication, QStyle, QStyleOptionToolButton

from segstudio.core.labelset import preset
from segstudio.gui.main_window import MainWindow
from segstudio.gui.palette_panel import PalettePanel
from segstudio.gui.status_bar import StatusBar
from segstudio.gui.theme import dark_palette
from segstudio.gui.training_panel import TrainingPanel
from segstudio.io.project import Project
from segstudio.model.arch import ArchSpec
from segstudio.model.files import new_model, save_model, with_metadata

from .conftest import make_images, open_window

LAPTOP = QSize(1366, 768)
TINY = ArchSpec("segnet_basic", {"width": 0.125, "depth": 2})


def _model(path: Path, **metadata) -> Path:
    model = new_model(TINY, preset("camvid11"), seed=0)
    if metadata:
        model = with_metadata(model, **metadata)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_model(path, model)


@pytest.fixture
def bundled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = _model(tmp_path / "install" / "camvid_segnet.safetensors")
    monkeypatch.setenv("SEGSTUDIO_BUNDLED_MODEL", str(path))
    return path


@pytest.fixture
def laptop(qtbot, tmp_path: Path, bundled: Path) -> Iterator[MainWindow]:
    """The window at a 1366 x 768 laptop's size, a CamVid project open, with a fine-tuned
    model beside the bundled one."""
    folder = make_images(tmp_path / "scenes", n=3)
    with Project.open(folder) as project:
        project.scan()
        project.set_labelset(preset("camvid11"))
    _model(
        folder / ".segstudio" / "models" / "model-tuned.safetensors",
        provenance={
            "parent": {"path": str(bundled), "mean_iou": 0.612},
            "kind": "fine-tuned",
            "head": "kept",
            "train_images": 12,
            "val_images": 3,
            "recipe": {"epochs": 3, "lr": 0.001, "batch_size": 4},
        },
        metrics={"mean_iou": 0.655, "pixel_accuracy": 0.9, "images": 3},
    )
    win = open_window(qtbot, folder, (LAPTOP.width(), LAPTOP.height()))
    yield win
    win.close()


def _ink(image, x: int, y: int, ref_x: int) -> int:
    """How far the pixel (x, y) is from the pixel (ref_x, y), in the largest channel."""
    a, b = image.pixelColor(x, y), image.pixelColor(ref_x, y)
    return max(abs(a.red() - b.red()), abs(a.green() - b.green()), abs(a.blue() - b.blue()))


def test_the_presets_button_draws_no_arrow_over_its_text(qtbot) -> None:
    panel = PalettePanel()
    qtbot.addWidget(panel)
    panel.resize(280, 400)
    panel.show()
    qtbot.waitExposed(panel)
    button = panel.presets
    assert button.text().endswith("▾")  # the arrow is part of the label, which fits
    assert button.width() >= button.sizeHint().width()
    # where the style draws a menu button's own arrow (bottom right, see QCommonStyle),
    # there is only the button's face: the same colour as at its left edge
    option = QStyleOptionToolButton()
    button.initStyleOption(option)
    arrow = button.style().pixelMetric(QStyle.PixelMetric.PM_MenuButtonIndicator, option, button)
    image = button.grab().toImage()
    w, h, side = image.width(), image.height(), arrow - 6
    x0, y0 = w - 1 + 5 - arrow, h - arrow + 4
    worst = max(_ink(image, x, y, 3) for y in range(y0, y0 + side) for x in range(x0, x0 + side))
    assert worst < 40


def test_a_long_status_message_ends_in_an_ellipsis_and_shows_in_full_in_its_tooltip(
    laptop: MainWindow, qtbot
) -> None:
    win = laptop
    win.action("actionToolFill").trigger()  # the fill's options join the status bar
    bar = win.statusBar()
    assert isinstance(bar, StatusBar)
    options = win.editing.fill.options
    qtbot.waitUntil(options.isVisible)
    long = (
        "Automatic prediction stopped: model-2024-camvid-tuned does not fit the classes "
        "(it predicts 11 classes but the project has 12); choose another model "
        "(Ctrl+Shift+M) or fine-tune (Ctrl+T)"
    )
    bar.showMessage(long)
    qtbot.waitUntil(lambda: bar.toolTip() == long)
    room = bar.message_rect()
    assert room.right() < options.x()  # never under the fill's options
    shown = bar.shown_message()
    assert shown.endswith("…") and long.startswith(shown[:-1])
    assert bar.fontMetrics().horizontalAdvance(shown) <= room.width()
    assert room.width() > bar.width() // 2  # the options are compact: the message has room
    bar.showMessage("Saved")
    assert bar.shown_message() == "Saved" and bar.toolTip() == ""


def test_the_training_plots_follow_the_theme(qtbot) -> None:
    app = QApplication.instance()
    before = app.palette()
    panel = TrainingPanel()
    qtbot.addWidget(panel)

    def looks(plot) -> tuple[QColor, QColor]:
        return plot.backgroundBrush().color(), plot.getAxis("left").textPen().color()

    try:
        app.setPalette(app.style().standardPalette())  # light
        for plot in (panel.loss_plot, panel.miou_plot):
            back, text = looks(plot)
            assert back.lightness() > 200 and text.lightness() < 100, plot.objectName()
        app.setPalette(dark_palette())
        for plot in (panel.loss_plot, panel.miou_plot):
            qtbot.waitUntil(lambda p=plot: looks(p)[0].lightness() < 80)
            assert looks(plot)[1].lightness() > 150
    finally:
        app.setPalette(before)


def test_the_model_details_show_the_parent_and_the_buttons_on_a_laptop(
    laptop: MainWindow, qtbot
) -> None:
    win = laptop
    win.action("actionModels").trigger()
    panel = win.prediction.models_panel
    qtbot.waitUntil(lambda: panel.loaded, timeout=10_000)
    tuned = win.project.models_dir / "model-tuned.safetensors"
    assert panel.select(tuned)
    details = panel.details
    assert "camvid_segnet (bundled), mIoU 0.612" in details.toPlainText()
    found = details.document().find("mIoU 0.612")  # the end of the Parent row
    assert not found.isNull()
    row = details.cursorRect(found)
    assert row.top() >= 0 and row.bottom() < details.viewport().height()  # not cut off
    scroll = win.models_dock.widget()  # the dock's own scroll area: nothing below the fold
    assert scroll.verticalScrollBar().maximum() == 0
    use = panel.use.mapTo(scroll.viewport(), panel.use.rect().bottomLeft())
    assert use.y() < scroll.viewport().height()
