"""Fine-tune from the window: trains in a worker while the user paints, cancels, stores lineage."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from segstudio.core.labelset import LabelClass, LabelSet, preset
from segstudio.gui.jobs import JobKind
from segstudio.gui.main_window import MainWindow
from segstudio.gui.training_panel import FineTuneDialog
from segstudio.io.project import Project
from segstudio.model.arch import ARCHITECTURES, ArchSpec
from segstudio.model.files import new_model, read_model_info, save_model
from segstudio.session.training import (
    FineTuneRequest,
    NewArch,
    StartFrom,
    Validation,
    interrupted_run,
    run_training,
)
from tests.gui.conftest import drag, make_images, open_window

SMALL = {"epochs": 3, "batch_size": 2, "crop": 64}


@pytest.fixture
def labelled(tmp_path: Path) -> Path:
    """Six synthetic scenes; four carry labels (sky 0, road 3, object 8)."""
    folder = make_images(tmp_path / "scenes", n=6, size=(90, 120))
    with Project.open(folder) as project:
        project.scan()
        project.set_labelset(preset("camvid11"))
        for i in range(4):
            labels = np.zeros((90, 120), np.uint8)
            labels[45:] = 3
            labels[30:60, 40:80] = 8
            project.save_labels(f"img{i}.png", labels)
    return folder


@pytest.fixture
def tiny_model(tmp_path: Path) -> Path:
    model = new_model(ArchSpec("segnet_basic", {"width": 0.25, "depth": 2}), preset("camvid11"))
    return save_model(tmp_path / "tiny.safetensors", model)


def _request(**options) -> FineTuneRequest:
    return FineTuneRequest(
        options={**SMALL, **options},
        start=StartFrom.ACTIVE,
        arch=NewArch("segnet", {"width": 0.25}),
        validation=Validation.AUTO,
    )


def test_fine_tune_while_painting_then_use_the_model(
    qtbot, labelled: Path, tiny_model: Path
) -> None:
    win: MainWindow = open_window(qtbot, labelled)
    win.prediction.set_model(tiny_model)
    win.training.fine_tune(_request())
    assert win.jobs.kind is JobKind.FINE_TUNE
    # the user keeps painting while the model trains
    win.palette.choose(2)
    drag(win, [(5, 5), (60, 5)])
    assert win.doc.labels[5, 30] == 2
    qtbot.waitUntil(lambda: not win.jobs.running, timeout=180_000)
    panel = win.training_panel
    assert "mIoU" in panel.result.text(), panel.result.text()
    assert panel.use.isVisible()
    assert len(panel._loss[0]) >= 3  # the loss curve moved
    assert panel.table.rowCount() == 11  # per-class IoU shown
    stored = sorted(win.project.models_dir.glob("model-*.safetensors"))
    assert len(stored) == 1
    info = read_model_info(stored[0])
    assert info.provenance["parent"]["path"] == str(tiny_model)  # lineage
    assert info.provenance["train_images"] + info.provenance["val_images"] == 4
    assert info.provenance["recipe"]["epochs"] == 3
    assert "mean_iou" in info.metrics
    assert win.models.path == tiny_model  # never active by itself
    assert win.project.active_model() == tiny_model
    # one click: make it active and re-predict the unreviewed images
    panel.use.click()
    assert win.models.path == stored[0]
    qtbot.waitUntil(lambda: not win.jobs.running, timeout=120_000)
    assert all(r.has_prediction for r in win.project.images())
    win.close()


def test_fine_tune_cancels_within_a_second(qtbot, labelled: Path, tiny_model: Path) -> None:
    import time

    win = open_window(qtbot, labelled)
    win.prediction.set_model(tiny_model)
    win.training.fine_tune(_request(epochs=None, minutes=5.0))
    qtbot.waitUntil(lambda: len(win.training_panel._loss[0]) >= 2, timeout=60_000)
    t0 = time.monotonic()
    win.training_panel.cancel.click()
    qtbot.waitUntil(lambda: not win.jobs.running, timeout=10_000)
    assert time.monotonic() - t0 < 1.0
    assert "Cancelled" in win.training_panel.result.text()
    assert not list(win.project.models_dir.glob("model-*.safetensors"))
    win.close()


def test_validation_images_are_marked_and_used(qtbot, labelled: Path) -> None:
    win = open_window(qtbot, labelled)
    win.action("actionToggleValidation").trigger()
    assert win.project.get_setting("validation_images") == ["img0.png"]
    assert "validation" in win.images.model.data(win.images.model.index(0))
    assert win.training.default_request().validation is Validation.MARKED
    assert win.training.default_request().start is StartFrom.NEW  # no model yet: a new one
    win.action("actionToggleValidation").trigger()
    assert win.project.get_setting("validation_images") == []
    win.close()


def test_interrupted_fine_tune_resumes_from_its_checkpoint(
    qtbot, labelled: Path, tiny_model: Path, monkeypatch
) -> None:
    import threading

    from PySide6.QtWidgets import QMessageBox

    win = open_window(qtbot, labelled)
    win.prediction.set_model(tiny_model)
    request = _request(epochs=4, checkpoint_every_s=0.001)
    # a run that dies after 3 steps (its generator is dropped, as when the app is killed)
    gen = run_training(win.project, tiny_model, request, threading.Event())
    steps = 0
    for p in gen:
        steps += p.kind == "step"
        if steps == 3:
            break
    del gen
    found = interrupted_run(win.project)
    assert found is not None and found.step >= 2  # written after each step's report
    asked = []
    monkeypatch.setattr(
        QMessageBox,
        "question",
        lambda *a, **k: asked.append(a[2]) or QMessageBox.StandardButton.Yes,
    )
    win.training.fine_tune()
    assert asked and f"step {found.step} of" in asked[0]
    qtbot.waitUntil(lambda: not win.jobs.running, timeout=120_000)
    stored = sorted(win.project.models_dir.glob("model-*.safetensors"))
    assert len(stored) == 1
    prov = read_model_info(stored[0]).provenance
    assert prov["steps"] == prov["total_steps"]
    assert interrupted_run(win.project) is None  # finished runs leave no checkpoint behind
    win.close()


def test_bundled_model_is_the_default_when_classes_fit(
    qtbot, labelled: Path, tiny_model: Path, monkeypatch
) -> None:
    monkeypatch.setenv("SEGSTUDIO_BUNDLED_MODEL", str(tiny_model))  # a CamVid-11 model
    win = open_window(qtbot, labelled)  # a CamVid-11 project without models
    assert win.models.path == tiny_model
    assert win.training.default_request().start is StartFrom.ACTIVE
    win.close()
    # recolouring a class changes no class's meaning: the bundled model still fits
    with Project.open(labelled) as project:
        ls = project.labelset
        car = LabelClass(ls.classes[8].name.upper(), (1, 2, 3))
        project.set_labelset(LabelSet(ls.name, (*ls.classes[:8], car, *ls.classes[9:])))
        project.set_setting("active_model", None)
    win = open_window(qtbot, labelled)
    assert win.models.path == tiny_model
    win.prediction.predict_image()
    qtbot.waitUntil(lambda: not win.jobs.running, timeout=60_000)
    assert win.doc.prediction is not None
    win.close()
    other = make_images(labelled.parent / "voc-project", n=3, size=(40, 50))
    with Project.open(other) as project:
        project.scan()
        project.set_labelset(preset("voc"))
        for i in range(3):
            labels = np.zeros((40, 50), np.uint8)
            labels[20:, 10:30] = 15  # a person
            project.save_labels(f"img{i}.png", labels)
    win = open_window(qtbot, other)
    assert win.models.path is None  # the bundled model's classes do not fit
    assert (
        win.training.default_request().start is StartFrom.ACTIVE
    )  # but its encoder starts the fine-tune
    dialog = FineTuneDialog(win, start_label="bundled", marked_val=0)
    assert dialog.request().start is StartFrom.ACTIVE  # offered first
    dialog.deleteLater()
    default = win.training.default_request()
    win.training.fine_tune(replace(default, options={**SMALL, "epochs": 1}))
    qtbot.waitUntil(lambda: not win.jobs.running, timeout=120_000)
    stored = sorted(win.project.models_dir.glob("model-*.safetensors"))
    assert len(stored) == 1, win.training_panel.result.text()
    info = read_model_info(stored[0])
    assert info.labelset.same_classes(preset("voc"))
    assert info.provenance["head"] == "new head, encoder kept"
    assert info.provenance["parent"]["path"] == str(tiny_model)
    win.close()


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_every_architecture_trains_and_predicts_in_the_window(
    qtbot, labelled: Path, arch: str
) -> None:
    win: MainWindow = open_window(qtbot, labelled)
    request = FineTuneRequest(
        options={**SMALL, "epochs": 1},
        start=StartFrom.NEW,
        arch=NewArch(arch, {"width": 0.125}),
    )
    win.training.fine_tune(request)
    qtbot.waitUntil(lambda: not win.jobs.running, timeout=180_000)
    stored = sorted(win.project.models_dir.glob("model-*.safetensors"))
    assert len(stored) == 1, win.training_panel.result.text()
    assert read_model_info(stored[0]).arch.name == arch
    win.training_panel.use.click()  # make it active: it predicts the unreviewed images
    assert win.models.path == stored[0]
    qtbot.waitUntil(lambda: not win.jobs.running, timeout=120_000)
    assert all(r.has_prediction for r in win.project.images())
    assert win.doc.prediction is not None
    assert win.doc.prediction.labels.shape == (90, 120)
    assert win.doc.prediction.labels.max() < 11
    win.close()


def test_training_plots_restart_per_run_with_sane_axes_for_one_point(qtbot) -> None:
    from segstudio.gui.training_panel import TrainingPanel
    from segstudio.training.events import TrainProgress

    panel = TrainingPanel()
    qtbot.addWidget(panel)
    panel.start(("a", "b"), "run 1")
    for step in range(1, 301):
        panel.progress(TrainProgress("step", step=step, total_steps=300, loss=2.0 / step))
    (x0, x1), (y0, y1) = panel.loss_plot.viewRange()
    assert x0 <= 0 and 300 <= x1 < 320 and y0 <= 0 and 2.0 <= y1 < 2.5
    panel.start(("a", "b"), "run 2")  # a new run: nothing of the last one's
    assert panel._loss == ([], []) and panel.table.rowCount() == 0
    panel.progress(TrainProgress("step", step=1, loss=0.8))  # one point, no known end
    (x0, x1), (y0, y1) = panel.loss_plot.viewRange()
    assert x0 <= 0 < 1 < x1 <= 13  # the point inside an axis from 0, not a 0-wide range
    assert y0 <= 0 < 0.8 < y1 < 1.0
    panel.progress(TrainProgress("validation", step=1, metrics={"mean_iou": 0.5}))
    (x0, x1), (y0, y1) = panel.miou_plot.viewRange()
    assert x0 <= 0 < 1 < x1 <= 13 and y0 <= 0 and 1 <= y1 < 1.1


def _fake_run(checkpoint: bool, kept: dict | None = None):
    """Stands in for run_training: reports a validation (and a checkpoint), then waits for
    cancel, or returns a model whose kept weights scored ``kept``."""
    from types import SimpleNamespace

    from segstudio.session.training import TrainingOutcome
    from segstudio.training.events import TrainProgress

    def run(project, active_model, request, cancel, resume=None, keep=None, live_base=None):
        last = {"mean_iou": 0.2, "per_class_iou": [0.1] * 11}
        yield TrainProgress("validation", step=5, metrics=last)
        if checkpoint:
            yield TrainProgress("checkpoint", step=5)
        if kept is None:
            while not cancel.wait(0.01):
                yield TrainProgress("step", step=6, loss=1.0)
            return None
        path = project.models_dir / "model-kept.safetensors"
        model = new_model(
            ArchSpec("segnet_basic", {"width": 0.125, "depth": 2}), preset("camvid11")
        )
        save_model(path, model)
        result = SimpleNamespace(
            after=kept, improved=False, stopped_early=None, verdict="NOT better (kept start)"
        )
        return TrainingOutcome(path, result)

    return run


@pytest.mark.parametrize("checkpoint", [False, True])
def test_the_quit_question_promises_a_resume_only_with_a_checkpoint(
    qtbot, labelled: Path, monkeypatch, checkpoint: bool
) -> None:
    from PySide6.QtWidgets import QMessageBox

    monkeypatch.setattr("segstudio.gui.training.run_training", _fake_run(checkpoint))
    win = open_window(qtbot, labelled)
    win.training.fine_tune(_request())
    qtbot.waitUntil(lambda: win.training_panel.table.rowCount() == 11, timeout=10_000)
    if checkpoint:
        qtbot.waitUntil(lambda: win.training._checkpoint == 5)
    asked: list[str] = []
    monkeypatch.setattr(
        QMessageBox, "question", lambda *a: asked.append(a[2]) or QMessageBox.StandardButton.No
    )
    win.close()  # answered No: it stays open
    assert win.isVisible() and win.jobs.kind is JobKind.FINE_TUNE
    if checkpoint:
        assert "resume from its last checkpoint (step 5)" in asked[0]
    else:
        assert "no checkpoint yet" in asked[0] and "resume" not in asked[0]
    monkeypatch.setattr(QMessageBox, "question", lambda *a: QMessageBox.StandardButton.Yes)
    win.close()
    assert not win.isVisible() and not win.jobs.running
    assert win.jobs.keep.is_set() is checkpoint  # the checkpoint is kept only when there is one


def test_per_class_iou_shows_the_kept_weights_not_the_last_epoch(
    qtbot, labelled: Path, monkeypatch
) -> None:
    kept = {"mean_iou": 0.7, "per_class_iou": [0.9] + [0.5] * 10, "images": 2}
    monkeypatch.setattr("segstudio.gui.training.run_training", _fake_run(False, kept))
    win = open_window(qtbot, labelled)
    win.training.fine_tune(_request())
    qtbot.waitUntil(lambda: not win.jobs.running, timeout=30_000)
    table = win.training_panel.table
    assert table.rowCount() == 11
    assert table.item(0, 1).text() == "0.900" and table.item(1, 1).text() == "0.500"
    assert "stored model (mIoU 0.700)" in win.training_panel.table_title.text()
    win.close()


def test_per_class_iou_table_shows_every_class_without_its_own_scrolling(qtbot) -> None:
    from segstudio.gui.training_panel import TrainingPanel
    from segstudio.training.events import TrainProgress

    names = tuple(preset("camvid11").names)
    panel = TrainingPanel()
    qtbot.addWidget(panel)
    panel.resize(300, 400)  # a short dock: the panel scrolls, the table does not
    panel.show()
    qtbot.waitExposed(panel)
    panel.start(names, "run")
    ious = [round(0.05 * i, 2) for i in range(len(names))]
    panel.progress(
        TrainProgress("validation", step=3, metrics={"mean_iou": 0.3, "per_class_iou": ious})
    )
    qtbot.wait(50)
    table = panel.table
    assert table.rowCount() == len(names) == 11
    assert table.verticalScrollBar().maximum() == 0  # every row in sight within the table
    last = table.visualItemRect(table.item(10, 0))
    assert table.viewport().rect().contains(last)
    assert [table.item(i, 0).text() for i in range(11)] == list(names)
    assert table.item(10, 1).text() == "0.500"


def test_a_finished_run_heads_the_panel_and_the_status_bar_with_its_verdict(
    qtbot, labelled: Path, monkeypatch
) -> None:
    kept = {"mean_iou": 0.7, "per_class_iou": [0.5] * 11, "images": 2}
    monkeypatch.setattr("segstudio.gui.training.run_training", _fake_run(False, kept))
    win = open_window(qtbot, labelled)
    win.training.fine_tune(_request())
    qtbot.waitUntil(lambda: not win.jobs.running, timeout=30_000)
    panel = win.training_panel
    assert panel.status.text() == "Finished: NOT better (kept start)."  # in sight, on top
    assert "NOT better (kept start)" in win.statusBar().currentMessage()
    qtbot.wait(200)
    assert "NOT better (kept start)" in win.statusBar().currentMessage()  # it stays
    win.close()


def test_the_panel_fits_a_narrow_dock_with_the_stored_models_heading(qtbot) -> None:
    from PySide6.QtWidgets import QScrollArea

    from segstudio.gui.training_panel import TrainingPanel

    names = tuple(preset("camvid11").names)
    panel = TrainingPanel()
    qtbot.addWidget(panel)
    panel.resize(280, 400)  # a laptop's dock, with the panel's vertical scroll bar
    panel.show()
    qtbot.waitExposed(panel)
    panel.start(names, "run")
    panel.show_final({"mean_iou": 0.9123, "per_class_iou": [0.9123] * 11})
    qtbot.wait(50)
    scroll = panel.findChild(QScrollArea, "trainingScroll")
    view = scroll.viewport()
    assert scroll.verticalScrollBar().isVisible()
    assert scroll.widget().width() <= view.width()  # nothing cut off on the right
    for widget in (panel.table_title, panel.table, panel.status):
        right = widget.mapTo(view, widget.rect().topRight()).x()
        assert right < view.width(), widget.objectName()
    table = panel.table
    iou = table.visualItemRect(table.item(0, 1))
    assert table.viewport().rect().contains(iou)  # the IoU values in sight
    assert table.horizontalScrollBar().maximum() == 0


def test_a_live_base_that_cannot_judge_is_said_and_the_run_goes_on(
    labelled: Path, tiny_model: Path, tmp_path: Path
) -> None:
    """Learn as I paint's SegNet is only a yardstick: a file gone since, or a network
    the live learner cannot read, is said in the log, and the run ends as without it.
    An interrupted run remembers it, to judge the same way when resumed."""
    import threading

    from segstudio.core.jobs import drive

    with Project.open(labelled) as project:
        for live_base, why in ((tmp_path / "gone.safetensors", "gone"), (tiny_model, "segnet")):
            reports: list = []
            gen = run_training(
                project, tiny_model, _request(epochs=1), threading.Event(), None, None, live_base
            )
            outcome = drive(gen, reports.append)
            said = [r.message for r in reports if r.message and "not judged" in r.message]
            assert len(said) == 1 and why in said[0].lower(), said
            assert outcome is not None and "live learner" not in outcome.result.verdict
        gen = run_training(
            project, tiny_model, _request(epochs=3, checkpoint_every_s=0.001), threading.Event(),
            None, None, tiny_model,
        )  # fmt: skip
        for p in gen:
            if p.kind == "checkpoint":
                break
        del gen  # dropped mid-run, as when the app is killed
        found = interrupted_run(project)
        assert found is not None and found.live_base == tiny_model
