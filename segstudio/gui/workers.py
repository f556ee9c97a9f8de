"""Model work off the GUI thread.

:class:`ModelService` owns the active model's predictor; it is created and
used only inside worker threads, so torch is imported, and models loaded,
after the window is up and never on the GUI thread. The functions here are
plain generators and callables that :func:`superqt.utils.create_worker` runs;
each ``yield`` is a point where progress is reported and cancel takes effect.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from segstudio.core.atomic import atomic_write_text
from segstudio.core.errors import SegStudioError
from segstudio.io.images import read_image
from segstudio.io.project import ImageStatus, Project

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Progress:
    """One step of a long job: ``done`` of ``total``, and the image just finished."""

    done: int
    total: int
    name: str
    error: str | None = None


def warm_up_torch() -> threading.Thread:
    """Import torch and run a tiny prediction and training step on a background thread.

    Importing torch, the first call of some kernels (max-unpooling among them)
    and the optimizer's first use (more imports) hold the GIL for up to 0.15 s,
    which no thread can hide from the GUI; doing them right after the window
    appears keeps those hitches out of the first prediction or fine-tune, when
    the user may be painting.
    """

    def work() -> None:
        import torch

        from segstudio.core.labelset import LabelClass, LabelSet
        from segstudio.model.arch import ArchSpec
        from segstudio.model.files import new_model
        from segstudio.model.predictor import Predictor

        tiny = LabelSet("warm-up", (LabelClass("a", (1, 1, 1)), LabelClass("b", (2, 2, 2))))
        model = new_model(ArchSpec("segnet_basic", {"width": 0.125, "depth": 2}), tiny)
        Predictor(model).predict(np.zeros((32, 32, 3), np.uint8))
        # one training step: the optimizer's first use imports more of torch
        net = model.network.train()
        optimizer = torch.optim.AdamW(net.parameters())
        net(torch.zeros(1, 3, 32, 32)).sum().backward()
        optimizer.step()

    thread = threading.Thread(target=work, name="segstudio-warm-up", daemon=True)
    thread.start()
    return thread


class ModelService:
    """The active model, loaded lazily in whichever worker thread first needs it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._run_lock = threading.Lock()
        self._path: Path | None = None
        self._predictor: Any = None

    @property
    def path(self) -> Path | None:
        return self._path

    def set_model(self, path: Path | None) -> None:
        with self._lock:
            if path != self._path:
                self._path = path
                self._predictor = None

    def predictor(self) -> Any:
        """The predictor of the active model (loads it on first use; call from a worker).

        The model loads outside the lock, so choosing another model on the GUI
        thread never waits for a load.
        """
        with self._lock:
            path, predictor = self._path, self._predictor
        if path is None:
            raise SegStudioError("no model chosen: Model → Choose model file…")
        if predictor is not None:
            return predictor
        from segstudio.model.files import load_model
        from segstudio.model.predictor import Predictor

        predictor = Predictor(load_model(path))
        log.info("loaded %s as %s", path, predictor)
        with self._lock:
            if self._path == path:
                self._predictor = predictor
        return predictor

    def labelset(self) -> Any:
        return self.predictor().info.labelset

    def predict(self, rgb: np.ndarray) -> tuple[Any, Path | None]:
        """Predict with the active model, one caller at a time (the automatic
        prediction of the shown image may run beside a job); returns the
        prediction and the model file that made it."""
        predictor = self.predictor()
        with self._run_lock:
            pred = predictor.predict(rgb)
        with self._lock:  # None when another model was chosen meanwhile
            return pred, self._path if self._predictor is predictor else None


def _to_uint8_confidence(conf: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(conf.astype(np.float32) * 255), 0, 255).astype(np.uint8)


def check_model_fits(service: ModelService, project: Project) -> None:
    """Refuse a model whose classes differ from the project's."""
    model_ls = service.labelset()
    project_ls = project.labelset
    if project_ls is None:
        project.set_labelset(model_ls)
        return
    if not model_ls.same_names(project_ls):  # colours are the project's own
        raise SegStudioError(
            f"the model predicts {model_ls.num_classes} classes ({', '.join(model_ls.names[:4])}…) "
            f"but the project has {project_ls.num_classes} ({', '.join(project_ls.names[:4])}…); "
            "choose a model trained for this project's classes"
        )


def predict_one(
    service: ModelService, project: Project, name: str
) -> tuple[str, np.ndarray, np.ndarray]:
    """Predict one image and store the prediction; returns (name, labels, confidence)."""
    check_model_fits(service, project)
    image = read_image(project.image_path(name))
    pred, model = service.predict(image.rgb)
    if model is None:  # another model was chosen meanwhile: this prediction is stale
        raise SegStudioError("the model changed during the prediction; predict again")
    conf = _to_uint8_confidence(pred.confidence)
    project.save_prediction(name, pred.labels, conf, model=str(model))
    return name, pred.labels, conf


def predict_all(service: ModelService, project: Project, names: list[str]) -> Iterator[Progress]:
    """Predict every image in ``names`` that is not reviewed; yields after each image.

    Unreadable images are reported in the progress and skipped; the rest go on.
    """
    check_model_fits(service, project)
    total = len(names)
    yield Progress(0, total, "")
    for i, name in enumerate(names, 1):
        error = None
        try:
            if project.record(name).status is not ImageStatus.REVIEWED:
                predict_one(service, project, name)
        except SegStudioError as exc:
            error = str(exc)
            log.warning("predict %s: %s", name, exc)
        except (RuntimeError, OSError, ValueError, MemoryError) as exc:  # one image, not the run
            error = f"{type(exc).__name__}: {exc}"
            log.exception("predict %s failed", name)
        yield Progress(i, total, name, error)


@dataclass(frozen=True)
class TrainingOutcome:
    """A finished fine-tune: where the new model version was stored, and how it did."""

    path: Path
    result: Any  # segstudio.training.loop.TrainResult


def _training_dir(project: Project) -> Path:
    return project.state_dir / "training"


def interrupted_run(project: Project) -> tuple[Path, dict[str, Any], dict[str, Any]] | None:
    """The newest fine-tune that was interrupted (the app quit or crashed mid-run):
    ``(folder, checkpoint info, what was asked)``, or None.

    Finished and cancelled runs delete their folder, so any run folder with a
    readable checkpoint is one that can be resumed.
    """
    from segstudio.training.loop import checkpoint_info

    root = _training_dir(project)
    if not root.is_dir():
        return None
    for run in sorted(root.iterdir(), reverse=True):
        asked = run / "choice.json"
        info = checkpoint_info(run) if asked.is_file() else None
        if info is not None:
            try:
                return run, info, json.loads(asked.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
    return None


def discard_run(run: Path) -> None:
    """Delete a run folder (its checkpoint can be hundreds of MB)."""
    shutil.rmtree(run, ignore_errors=True)


def run_training(
    project: Project,
    active_model: Path | None,
    choice: Any,
    cancel: threading.Event,
    resume: Path | None = None,
    keep: threading.Event | None = None,
) -> Iterator[Any]:
    """Fine-tune on the project's labels; yields TrainProgress, returns a TrainingOutcome.

    The data is a snapshot taken now, so the user keeps painting meanwhile.
    Setting ``cancel`` stops within one block of the network's compute (the
    training polls it inside every step); nothing is stored then. The new
    model version goes to the project's models folder, with its lineage
    (parent, images, recipe, metrics) in its metadata. Checkpoints go to a run
    folder; ``resume`` (such a folder, see :func:`interrupted_run`) continues
    an interrupted run from its last checkpoint.
    """
    import datetime as _dt

    from segstudio.model.arch import ArchSpec
    from segstudio.model.files import load_model, save_model, with_metadata
    from segstudio.model.live import base_model
    from segstudio.training.data import from_project
    from segstudio.training.loop import TrainConfig, TrainingCancelled, fine_tune
    from segstudio.training.recipes import FEW_SHOT

    val_names = project.get_setting("validation_images") if choice.validation == "marked" else None
    data = from_project(project, val_names=val_names or None)
    if not val_names and len(data.val) < 3 and len(data.train) + len(data.val) >= 6:
        # few images: hold out more of them, so "better" rests on several images
        data = from_project(project, val_fraction=0.3)
    init = load_model(active_model) if choice.start_from_active and active_model else None
    if init is not None and init.info.arch.name == "live":
        init = base_model(init)  # the live learner's frozen SegNet is what trains deep
    # from a trained model: the few-shot recipe, where the user chose nothing else
    config = TrainConfig.from_dict({**FEW_SHOT, **choice.config} if init else choice.config)
    arch = None if init is not None else ArchSpec(choice.arch[0], dict(choice.arch[1]))
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = resume or _training_dir(project) / stamp
    if resume is None:
        run_dir.mkdir(parents=True, exist_ok=True)
        asked = {"choice": dataclasses.asdict(choice), "active_model": str(active_model or "")}
        atomic_write_text(run_dir / "choice.json", json.dumps(asked))
    gen = fine_tune(
        data,
        init=init,
        arch=arch,
        config=config,
        checkpoint_dir=run_dir,
        resume=resume is not None,
        cancel=cancel.is_set,
    )
    try:
        while True:
            try:
                progress = next(gen)
            except StopIteration as stop:
                result = stop.value
                break
            except TrainingCancelled:  # raised inside the step, within one block's compute
                break
            yield progress
            if cancel.is_set():
                break
    finally:
        gen.close()  # stops the training here, in the worker thread
    if cancel.is_set():
        if keep is None or not keep.is_set():  # quitting keeps the checkpoint to resume
            discard_run(run_dir)
        return None
    path = project.models_dir / f"model-{stamp}.safetensors"
    provenance = {**result.model.info.provenance, "project": str(project.folder)}
    save_model(path, with_metadata(result.model, provenance=provenance))
    discard_run(run_dir)  # the model is stored; the checkpoint is no longer needed
    return TrainingOutcome(path, result)


def run_cancellable(
    make: Callable[[], Generator[Any, None, Any]], cancel: threading.Event
) -> Generator[Any, None, Any]:
    """Drive the generator ``make()`` returns, in the worker thread, until it ends or
    ``cancel`` is set; returns its value, or None when cancelled.

    Closing happens here, in the thread that ran it, so the generator's own
    clean-up (an export's temporary folder, say) runs at once.
    """
    gen = make()
    try:
        while True:
            try:
                progress = next(gen)
            except StopIteration as stop:
                return stop.value
            yield progress
            if cancel.is_set():
                return None
    finally:
        gen.close()
