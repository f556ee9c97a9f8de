"""Model work off the GUI thread.

:class:`ModelService` owns the active model's predictor; it is created and
used only inside worker threads, so torch is imported, and models loaded,
after the window is up and never on the GUI thread. The functions here are
plain generators and callables that :func:`superqt.utils.create_worker` runs;
each ``yield`` is a point where progress is reported and cancel takes effect.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

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
    """Import torch and run a tiny prediction on a background thread, now.

    Importing torch, and the first call of some kernels (max-unpooling among
    them), hold the GIL for tens of milliseconds, which no thread can hide from
    the GUI; doing both right after the window appears keeps those hitches out
    of the first prediction, when the user may be painting.
    """

    def work() -> None:
        from segstudio.core.labelset import LabelClass, LabelSet
        from segstudio.model.arch import ArchSpec
        from segstudio.model.files import new_model
        from segstudio.model.predictor import Predictor

        tiny = LabelSet("warm-up", (LabelClass("a", (1, 1, 1)), LabelClass("b", (2, 2, 2))))
        model = new_model(ArchSpec("segnet_basic", {"width": 0.125, "depth": 2}), tiny)
        Predictor(model).predict(np.zeros((32, 32, 3), np.uint8))

    thread = threading.Thread(target=work, name="segstudio-warm-up", daemon=True)
    thread.start()
    return thread


class ModelService:
    """The active model, loaded lazily in whichever worker thread first needs it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
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
        """The predictor of the active model (loads it on first use; call from a worker)."""
        with self._lock:
            if self._path is None:
                raise SegStudioError("no model chosen: Model → Choose model file…")
            if self._predictor is None:
                from segstudio.model.files import load_model
                from segstudio.model.predictor import Predictor

                self._predictor = Predictor(load_model(self._path))
                log.info("loaded %s as %s", self._path, self._predictor)
            return self._predictor

    def labelset(self) -> Any:
        return self.predictor().info.labelset


def _to_uint8_confidence(conf: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(conf.astype(np.float32) * 255), 0, 255).astype(np.uint8)


def check_model_fits(service: ModelService, project: Project) -> None:
    """Refuse a model whose classes differ from the project's."""
    model_ls = service.labelset()
    project_ls = project.labelset
    if project_ls is None:
        project.set_labelset(model_ls)
        return
    if not model_ls.same_classes(project_ls):
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
    pred = service.predictor().predict(image.rgb)
    conf = _to_uint8_confidence(pred.confidence)
    project.save_prediction(name, pred.labels, conf, model=str(service.path))
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
        yield Progress(i, total, name, error)


@dataclass(frozen=True)
class TrainingOutcome:
    """A finished fine-tune: where the new model version was stored, and how it did."""

    path: Path
    result: Any  # segstudio.training.loop.TrainResult


def run_training(
    project: Project,
    active_model: Path | None,
    choice: Any,
    cancel: threading.Event,
) -> Iterator[Any]:
    """Fine-tune on the project's labels; yields TrainProgress, returns a TrainingOutcome.

    The data is a snapshot taken now, so the user keeps painting meanwhile.
    Setting ``cancel`` stops at the next step (the training yields after every
    step and every validation image); nothing is stored then. The new model
    version goes to the project's models folder, with its lineage (parent,
    images, recipe, metrics) in its metadata.
    """
    import datetime as _dt

    from segstudio.model.arch import ArchSpec
    from segstudio.model.files import load_model, save_model, with_metadata
    from segstudio.training.data import from_project
    from segstudio.training.loop import TrainConfig, TrainingCancelled, fine_tune

    val_names = project.get_setting("validation_images") if choice.validation == "marked" else None
    data = from_project(project, val_names=val_names or None)
    config = TrainConfig.from_dict(choice.config)
    init = load_model(active_model) if choice.start_from_active and active_model else None
    arch = None if init is not None else ArchSpec(choice.arch[0], dict(choice.arch[1]))
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = project.state_dir / "training" / stamp
    gen = fine_tune(
        data, init=init, arch=arch, config=config, checkpoint_dir=run_dir, cancel=cancel.is_set
    )
    try:
        while True:
            try:
                progress = next(gen)
            except StopIteration as stop:
                result = stop.value
                break
            except TrainingCancelled:  # raised inside the step, within one block's compute
                return None
            yield progress
            if cancel.is_set():
                return None
    finally:
        gen.close()  # stops the training here, in the worker thread
    path = project.models_dir / f"model-{stamp}.safetensors"
    provenance = {**result.model.info.provenance, "project": str(project.folder)}
    save_model(path, with_metadata(result.model, provenance=provenance))
    return TrainingOutcome(path, result)
