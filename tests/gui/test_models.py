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
from PySide6.QtWidgets import QMessageBox

from segstudio.core.labelset import preset
from segstudio.gui.jobs import JobKind
from segstudio.gui.main_window import MainWindow
from segstudio.gui.models_dialog import COLUMNS
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
    win.close()


def _fake_training(improved: bool | None):
    """Stands in for run_training: stores a model and reports the verdict ``improved``."""

    def run(project, active_model, request, cancel, resume=None, keep=None):
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


def test_the_model_list_shows_lineage_and_switches_the_active_model(
    qtbot, camvid: Path, bundled: Path, monkeypatch
) -> None:
    tuned = _project_model(
        camvid,
        "model-tuned.safetensors",
        provenance={"parent": {"path": str(bundled), "mean_iou": 0.4}, "head": "kept"},
        metrics={"mean_iou": 0.625, "images": 2},
    )
    voc = _model(camvid / ".segstudio" / "models" / "model-voc.safetensors", "voc")
    win = open_window(qtbot, camvid)
    win.action("actionModels").trigger()
    dialog = win.prediction.models_dialog
    assert dialog is not None and dialog.isVisible()
    qtbot.waitUntil(lambda: dialog.loaded, timeout=10_000)
    table = dialog.table
    rows = {table.item(r, 1).text(): r for r in range(table.rowCount())}
    assert set(rows) == {"camvid_segnet.safetensors (bundled)", tuned.name, voc.name}

    def cell(name: str, column: str) -> str:
        return table.item(rows[name], COLUMNS.index(column)).text()

    bundled_row = "camvid_segnet.safetensors (bundled)"
    assert cell(bundled_row, "Active") == "●" and cell(tuned.name, "Active") == ""
    assert cell(tuned.name, "Architecture") == "segnet_basic"
    assert cell(tuned.name, "Classes") == "11"
    assert cell(tuned.name, "Val mIoU") == "0.625"
    assert cell(tuned.name, "Parent") == "camvid_segnet.safetensors (bundled)"
    assert cell(tuned.name, "Created")[:2] == "20"
    assert "the project has 11" in cell(voc.name, "Note")  # greyed, with the reason
    assert dialog.select(voc)
    assert not dialog.use.isEnabled()
    asked = []
    monkeypatch.setattr(
        QMessageBox,
        "question",
        lambda *a, **k: asked.append(a[2]) or QMessageBox.StandardButton.Yes,
    )
    assert dialog.select(tuned)
    assert dialog.use.isEnabled()
    dialog.use.click()
    assert not dialog.isVisible()
    assert win.models.path == tuned
    assert win.project.model_choice().kind is ModelKind.PROJECT
    assert asked and "Re-predict the 3 unreviewed image(s)" in asked[0]
    assert win.jobs.kind is JobKind.PREDICT_ALL
    qtbot.waitUntil(lambda: not win.jobs.running, timeout=60_000)
    assert all(r.has_prediction for r in win.project.images())
    win = _reopen(qtbot, win, camvid)
    assert win.models.path == camvid.resolve() / ".segstudio" / "models" / tuned.name
    # and back to the bundled model, marked active in the list
    win.prediction.show_models()
    dialog = win.prediction.models_dialog
    qtbot.waitUntil(lambda: dialog.loaded, timeout=10_000)
    assert dialog.models[dialog.active].name == tuned.name
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.No)
    assert dialog.select(bundled)
    dialog.use_selected()
    assert win.models.path == bundled and not win.jobs.running
    assert win.project.get_setting("active_model") == {"kind": "bundled"}
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
