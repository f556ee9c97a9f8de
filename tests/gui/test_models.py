"""The active model is chosen, never guessed: stored, restored, listed and switched."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QMessageBox

from segstudio.core.labelset import preset
from segstudio.gui.jobs import JobKind
from segstudio.gui.main_window import MainWindow
from segstudio.gui.models_panel import MARK, MODEL
from segstudio.io.project import Project
from segstudio.io.project.models import ModelKind
from segstudio.model.arch import ArchSpec
from segstudio.model.files import new_model, save_model, with_metadata
from segstudio.session.training import FineTuneRequest, TrainingOutcome
from tests.gui.conftest import make_images, open_window

TINY = ArchSpec("segnet_basic", {"width": 0.125, "depth": 2})


def _model(path: Path, preset_name: str = "camvid11", **metadata) -> Path:
    model = new_model(TINY, preset(preset_name), seed=0)
    if metadata:
        model = with_metadata(model, **metadata)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_model(path, model)


@pytest.fixture
def camvid(tmp_path: Path) -> Path:
    folder = make_images(tmp_path / "scenes", n=3)
    with Project.open(folder) as project:
        project.scan()
        project.set_labelset(preset("camvid11"))
    return folder


@pytest.fixture
def bundled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = _model(tmp_path / "install" / "camvid_segnet.safetensors")
    monkeypatch.setenv("SEGSTUDIO_BUNDLED_MODEL", str(path))
    return path


def _project_model(folder: Path, name: str, *, age_s: float = 0, **metadata) -> Path:
    """A model in the project's models folder, ``age_s`` seconds older than now."""
    path = _model(folder / ".segstudio" / "models" / name, **metadata)
    when = time.time() - age_s
    os.utime(path, (when, when))
    return path


def _reopen(qtbot, win: MainWindow, folder: Path) -> MainWindow:
    win.close()
    return open_window(qtbot, folder)


def test_reopening_keeps_the_chosen_model_even_when_a_newer_one_exists(
    qtbot, camvid: Path, bundled: Path, tmp_path: Path
) -> None:
    win = open_window(qtbot, camvid)  # nothing stored: the bundled model fits, and is stored
    assert win.models.path == bundled
    assert win.project.get_setting("active_model") == {"kind": "bundled"}
    older = _project_model(camvid, "model-older.safetensors", age_s=3600)
    _project_model(camvid, "model-newest.safetensors")
    win = _reopen(qtbot, win, camvid)
    assert win.models.path == bundled  # not the newest project model
    assert win.prediction.set_model(older)
    assert win.project.get_setting("active_model") == {
        "kind": "project",
        "path": "model-older.safetensors",
    }
    win = _reopen(qtbot, win, camvid)
    assert win.models.path == camvid.resolve() / ".segstudio" / "models" / older.name
    assert "model-older" in win.prediction.model_label.text()
    outside = _model(tmp_path / "mine" / "outside.safetensors")
    assert win.prediction.set_model(outside)
    win = _reopen(qtbot, win, camvid)
    assert win.models.path == outside.resolve()
    win.close()


def test_a_missing_model_is_said_and_nothing_else_is_used(
    qtbot, camvid: Path, bundled: Path
) -> None:
    chosen = _project_model(camvid, "model-chosen.safetensors", age_s=60)
    _project_model(camvid, "model-other.safetensors")
    win = open_window(qtbot, camvid)
    assert win.prediction.set_model(chosen)
    win.close()
    chosen.unlink()
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    assert win.open_folder(camvid)
    assert win.models.path is None  # neither the other project model nor the bundled one
    assert (
        "missing" in win.prediction.model_label.text()
        and "model-chosen" in win.prediction.model_label.text()
    )
    # the warning outlives the "Opening …" message of the first image
    qtbot.waitUntil(lambda: win.doc is not None)
    assert "model-chosen.safetensors, is missing" in win.statusBar().currentMessage()
    choice = win.project.model_choice()
    assert choice is not None and choice.label == "model-chosen.safetensors"  # kept as chosen
    panel = win.prediction.models_panel  # listed, greyed, saying why
    qtbot.waitUntil(lambda: panel.loaded, timeout=10_000)
    assert _row_text(panel, chosen) == "model-chosen\nunusable:\nmodel file not found"
    assert panel.tree.topLevelItem(panel.row_of(chosen)).text(MARK) == "●"
    win.close()


def _fake_training(improved: bool | None):
    """Stands in for run_training: stores a model and reports the verdict ``improved``."""

    def run(project, active_model, request, cancel, resume=None, keep=None, live_base=None):
        path = project.models_dir / "model-20990101-000000.safetensors"
        parent = {"path": str(active_model), "mean_iou": 0.5}
        _model(path, provenance={"parent": parent}, metrics={"mean_iou": 0.6})
        after = {"mean_iou": 0.6 if improved else 0.4, "images": 1}
        verdict = {True: "better", False: "NOT better", None: "too few to judge"}[improved]
        result = SimpleNamespace(
            before={"mean_iou": 0.5},
            after=after,
            improved=improved,
            stopped_early=None,
            verdict=f"{verdict} on 1 validation image(s)",
        )
        return TrainingOutcome(path, result)
        yield  # a generator, as run_training is

    return run


def _fine_tune(qtbot, win: MainWindow, monkeypatch, improved: bool | None) -> None:
    monkeypatch.setattr("segstudio.gui.training.run_training", _fake_training(improved))
    win.training.fine_tune(FineTuneRequest({"epochs": 1}))
    qtbot.waitUntil(lambda: not win.jobs.running and bool(win.training_panel.result.text()))


@pytest.mark.parametrize(("improved", "auto"), [(True, False), (False, True), (None, True)])
def test_a_fine_tuned_model_is_never_active_by_itself(
    qtbot, camvid: Path, bundled: Path, monkeypatch, improved: bool | None, auto: bool
) -> None:
    win = open_window(qtbot, camvid)
    win.action("actionAutoUseBetter").setChecked(auto)
    _fine_tune(qtbot, win, monkeypatch, improved)
    assert win.models.path == bundled
    assert win.training_panel.use.isVisible()
    assert "stays until you click Use" in win.training_panel.result.text()
    win = _reopen(qtbot, win, camvid)
    assert win.models.path == bundled  # not after a restart either
    assert win.action("actionAutoUseBetter").isChecked() is auto  # kept with the project
    win.close()


def test_use_hides_itself_once_the_trained_model_is_active(
    qtbot, camvid: Path, bundled: Path, monkeypatch
) -> None:
    win = open_window(qtbot, camvid)
    _fine_tune(qtbot, win, monkeypatch, improved=False)
    panel = win.training_panel
    assert panel.use.isVisible() and "until you click Use" in panel.result.text()
    qtbot.mouseClick(panel.use, Qt.MouseButton.LeftButton)
    new = win.project.models_dir / "model-20990101-000000.safetensors"
    assert win.models.path == new
    assert not panel.use.isVisible()
    assert "until you click Use" not in panel.result.text()
    assert "is the active model now" in panel.result.text()
    # the Models panel lists the new model, marked active
    models = win.prediction.models_panel
    qtbot.waitUntil(lambda: models.loaded and models.row_of(new) is not None, timeout=10_000)
    assert models.models[models.active].path == new
    qtbot.waitUntil(lambda: not win.jobs.running, timeout=60_000)
    win.close()


def test_a_better_model_is_used_when_the_user_asked_for_that(
    qtbot, camvid: Path, bundled: Path, monkeypatch
) -> None:
    win = open_window(qtbot, camvid)
    assert not win.action("actionAutoUseBetter").isChecked()  # off by default
    win.action("actionAutoUseBetter").trigger()
    assert win.project.get_setting("auto_use_better_model") is True
    _fine_tune(qtbot, win, monkeypatch, improved=True)
    new = win.project.models_dir / "model-20990101-000000.safetensors"
    assert win.models.path == new
    assert not win.training_panel.use.isVisible()
    assert "active model now" in win.training_panel.result.text()
    # the unreviewed images are re-predicted with it, once the fine-tune has ended
    qtbot.waitUntil(lambda: not win.jobs.running and not win.prediction.auto.busy, timeout=60_000)
    assert all(r.has_prediction for r in win.project.images())
    win = _reopen(qtbot, win, camvid)
    assert win.models.path == new
    win.close()


def _row_text(panel, path: Path) -> str:
    return panel.tree.topLevelItem(panel.row_of(path)).text(MODEL)


def _click_row(qtbot, panel, path: Path, column: int = MODEL) -> None:
    """A real click on a model's row (its ○ for column MARK)."""
    item = panel.tree.topLevelItem(panel.row_of(path))
    panel.tree.scrollToItem(item)  # a short dock shows a few rows: the list scrolls
    rect = panel.tree.visualItemRect(item)
    x = panel.tree.header().sectionPosition(column) + 6
    qtbot.mouseClick(
        panel.tree.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(x, rect.center().y())
    )


def test_the_models_panel_shows_metrics_and_lineage_and_switches_with_one_click(
    qtbot, camvid: Path, bundled: Path, monkeypatch
) -> None:
    tuned = _project_model(
        camvid,
        "model-tuned.safetensors",
        provenance={
            "parent": {"path": str(bundled), "mean_iou": 0.4},
            "kind": "fine-tuned",
            "head": "kept",
            "train_images": 7,
            "val_images": 2,
            "recipe": {"epochs": 3, "lr": 0.001, "batch_size": 4},
            "teacher": {"arch": {"name": "segnet", "params": {"width": 0.5}}, "mean_iou": 0.57},
        },
        metrics={"mean_iou": 0.625, "pixel_accuracy": 0.9, "images": 2},
    )
    voc = _model(camvid / ".segstudio" / "models" / "model-voc.safetensors", "voc")
    win = open_window(qtbot, camvid)
    win.action("actionModels").trigger()  # Model → Models…: the dock, in front
    panel = win.prediction.models_panel
    assert win.models_dock.isVisible() and panel.isVisible()
    qtbot.waitUntil(lambda: panel.loaded, timeout=10_000)
    assert panel.tree.topLevelItemCount() == 3
    assert _row_text(panel, bundled).startswith("camvid_segnet (bundled)")
    assert panel.tree.topLevelItem(panel.row_of(bundled)).text(MARK) == "●"  # the active one
    line = _row_text(panel, tuned)
    assert line.startswith("model-tuned\nmIoU 0.625 (2 images) · 11 classes\nsegnet_basic")
    assert "does not fit:\n21 classes; the project has 11" in _row_text(panel, voc)
    _click_row(qtbot, panel, tuned)  # selecting shows it in full
    details = panel.details.toPlainText()
    for text in (
        "segnet_basic",
        "11: Sky, Building",
        "mIoU 0.625, pixel accuracy 0.900, on 2 image(s)",
        "Parent\ncamvid_segnet (bundled), mIoU 0.400",
        "Teacher\ndistilled from a segnet of width 0.5, mIoU 0.570",
        "fine-tuned · kept",
        "trained on 7, validated on 2",
        "epochs 3, lr 0.001, batch_size 4",
    ):
        assert text in details, (text, details)
    _click_row(qtbot, panel, voc, MARK)  # greyed: its ○ does nothing
    assert "Cannot be used" in panel.details.toPlainText()
    assert not panel.use.isEnabled() and win.models.path == bundled
    asked = []
    monkeypatch.setattr(
        QMessageBox,
        "question",
        lambda *a, **k: asked.append(a[2]) or QMessageBox.StandardButton.Yes,
    )
    _click_row(qtbot, panel, tuned, MARK)  # one click makes it active ...
    assert win.models.path == tuned
    assert win.project.model_choice().kind is ModelKind.PROJECT
    assert panel.tree.topLevelItem(panel.row_of(tuned)).text(MARK) == "●"
    assert panel.tree.topLevelItem(panel.row_of(bundled)).text(MARK) == "○"
    assert "model-tuned" in win.prediction.model_label.text()
    # ... then offers to re-predict the unreviewed images
    assert asked and "Re-predict the 3 unreviewed image(s)" in asked[0]
    assert win.jobs.kind is JobKind.PREDICT_ALL
    assert panel.isVisible()  # a panel: it stays open
    qtbot.waitUntil(lambda: not win.jobs.running, timeout=60_000)
    assert all(r.has_prediction for r in win.project.images())
    win = _reopen(qtbot, win, camvid)
    assert win.models.path == camvid.resolve() / ".segstudio" / "models" / tuned.name
    # and back to the bundled model with Use
    panel = win.prediction.models_panel
    qtbot.waitUntil(lambda: panel.loaded, timeout=10_000)
    assert panel.models[panel.active].name == tuned.name
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.No)
    win.prediction.show_models()
    qtbot.waitUntil(lambda: panel.loaded, timeout=10_000)
    _click_row(qtbot, panel, bundled)
    assert panel.use.isEnabled()
    qtbot.mouseClick(panel.use, Qt.MouseButton.LeftButton)
    assert win.models.path == bundled and not win.jobs.running
    assert win.project.get_setting("active_model") == {"kind": "bundled"}
    assert not panel.use.isEnabled()  # it is the active one now
    win.close()


def test_a_class_change_that_makes_the_active_model_unfit_is_said_at_once(
    qtbot, camvid: Path, bundled: Path
) -> None:
    win = open_window(qtbot, camvid)
    panel = win.prediction.models_panel
    qtbot.waitUntil(lambda: panel.loaded, timeout=10_000)
    assert win.prediction.unfit is None
    win.palette.use_labelset(preset("voc"), confirm=False)  # Classes → Presets → VOC
    qtbot.waitUntil(lambda: win.prediction.unfit is not None, timeout=30_000)
    assert win.prediction.unfit == "11 classes; the project has 21"
    assert "does not fit" in win.prediction.model_label.text()
    assert "does not fit the classes" in win.statusBar().currentMessage()
    assert "does not fit" in panel.status.text()
    assert "does not fit" in _row_text(panel, bundled)
    win.palette.use_labelset(preset("camvid11"), confirm=False)  # and back
    qtbot.waitUntil(lambda: win.prediction.unfit is None, timeout=30_000)
    assert "does not fit" not in win.prediction.model_label.text()
    assert "fits the classes again" in win.statusBar().currentMessage()
    win.close()


def test_choosing_a_model_file_that_does_not_fit_is_refused(
    qtbot, camvid: Path, bundled: Path, tmp_path: Path, monkeypatch
) -> None:
    from PySide6.QtWidgets import QFileDialog

    voc = _model(tmp_path / "other" / "voc.safetensors", "voc")
    where = []

    def pick(_parent, _title, start, _filter):
        where.append(start)
        return str(voc), ""

    monkeypatch.setattr(QFileDialog, "getOpenFileName", pick)
    warnings = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a: warnings.append(a[2]))
    win = open_window(qtbot, camvid)
    win.action("actionChooseModel").trigger()
    assert where == [str(win.project.models_dir)]  # not the working directory
    assert warnings and "cannot be used here: 21 classes; the project has 11" in warnings[0]
    assert win.models.path == bundled
    win.close()


def test_opening_a_project_reads_no_weights_and_imports_no_torch(
    camvid: Path, bundled: Path, tmp_path: Path
) -> None:
    code = textwrap.dedent(
        f"""
        import sys
        from PySide6.QtWidgets import QApplication
        from segstudio.gui.main_window import MainWindow
        app = QApplication([])
        win = MainWindow()
        assert win.open_folder({str(camvid)!r})
        assert win.models.path is not None, "the bundled model fits and is used"
        assert "torch" not in sys.modules, "torch was imported on the GUI thread"
        win.close_folder()
        """
    )
    env = {
        **os.environ,
        "SEGSTUDIO_BUNDLED_MODEL": str(bundled),
        "SEGSTUDIO_CONFIG_DIR": str(tmp_path / "config"),
        "QT_QPA_PLATFORM": "offscreen",
    }
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, env=env, cwd=tmp_path)


def test_a_metric_measured_on_few_images_is_marked_not_comparable(
    qtbot, camvid: Path, bundled: Path
) -> None:
    one = _project_model(camvid, "model-one.safetensors", metrics={"mean_iou": 0.967, "images": 1})
    many = _project_model(
        camvid, "model-many.safetensors", metrics={"mean_iou": 0.568, "images": 101}
    )
    win = open_window(qtbot, camvid)
    panel = win.prediction.models_panel
    qtbot.waitUntil(lambda: panel.loaded, timeout=10_000)
    assert _row_text(panel, one).startswith("model-one\nmIoU 0.967 (1 image) · ")
    assert _row_text(panel, many).startswith("model-many\nmIoU 0.568 · ")
    tip = panel.tree.topLevelItem(panel.row_of(one)).toolTip(MODEL)
    assert "measured on 1 image: not comparable" in tip
    assert "not comparable" not in panel.tree.topLevelItem(panel.row_of(many)).toolTip(MODEL)
    _click_row(qtbot, panel, one)
    assert "on 1 image(s): too few to compare" in panel.details.toPlainText()
    assert "#888888" in panel.details.toHtml()  # in grey
    win.close()
