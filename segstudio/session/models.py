"""The model service: the active model, predicting one image or all of them.

Qt-free, shared by the window and the command line. :class:`ModelService`
loads the active model lazily in whichever worker thread first needs it, so
torch is imported, and models loaded, never on the window's thread. The
predictions come back as arrays and are stored in the project.

A prediction can report its tiles (``progress(done, total)``) and be
cancelled (``cancelled()``, checked within every layer of the network), so
a huge image shows how far it is and stops within a moment; a cancelled
prediction stores nothing and returns None.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from segstudio.core.errors import SegStudioError
from segstudio.core.jobs import Progress
from segstudio.io.images import read_image
from segstudio.io.project import ImageStatus, Project

log = logging.getLogger(__name__)

#: ``progress(done, total)``: tiles of the image in hand.
TileProgress = Callable[[int, int], None]
#: ``cancelled()``: True once the prediction should stop.
Cancelled = Callable[[], bool]


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
        return self._loaded()[1]

    def _loaded(self) -> tuple[Path, Any]:
        """The active model's file and its predictor, loaded if need be."""
        with self._lock:
            path, predictor = self._path, self._predictor
        if path is None:
            raise SegStudioError("no model chosen: Model → Choose model file…")
        if predictor is not None:
            return path, predictor
        from segstudio.model.files import load_model
        from segstudio.model.predictor import Predictor

        predictor = Predictor(load_model(path))
        log.info("loaded %s as %s", path, predictor)
        with self._lock:
            if self._path == path:
                if self._predictor is not None:  # another thread loaded it meanwhile
                    return path, self._predictor
                self._predictor = predictor
        return path, predictor

    def labelset(self) -> Any:
        return self.predictor().info.labelset

    def predict(
        self,
        rgb: np.ndarray,
        progress: TileProgress | None = None,
        cancelled: Cancelled | None = None,
    ) -> tuple[Any, Path | None]:
        """Predict with the active model; returns the prediction and the model file
        that made it (None when another model was chosen meanwhile).

        Callers on several threads (the automatic prediction of the shown image
        beside a job) take turns tile by tile in the predictor, so a small image
        never waits for a huge one to finish. Raises a
        :class:`~segstudio.core.errors.SegStudioError` when ``cancelled()``.
        """
        path, predictor = self._loaded()
        pred = predictor.predict(rgb, progress=progress, cancelled=cancelled)
        with self._lock:  # None when another model was chosen meanwhile
            return pred, path if self._path == path else None


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
    service: ModelService,
    project: Project,
    name: str,
    progress: TileProgress | None = None,
    cancelled: Cancelled | None = None,
    *,
    rgb: np.ndarray | None = None,
) -> tuple[str, np.ndarray, np.ndarray] | None:
    """Predict one image and store the prediction; returns (name, labels, confidence),
    or None when ``cancelled()`` stopped it (nothing is stored then).

    ``rgb`` is the image's pixels when the caller has them already (the window's open
    image): the file, which may take seconds to decode, is not read again.
    ``cancelled()`` is asked again after the steps it cannot interrupt (loading the
    model, reading the file), so a cancelled prediction goes no further.
    """

    def stop() -> bool:
        return cancelled is not None and cancelled()

    check_model_fits(service, project)  # loads the model on first use
    if stop():
        return None
    if rgb is None:
        rgb = read_image(project.image_path(name)).rgb
        if stop():
            return None
    try:
        pred, model = service.predict(rgb, progress, cancelled)
    except SegStudioError:
        if stop():
            return None
        raise
    if model is None:  # another model was chosen meanwhile: this prediction is stale
        raise SegStudioError("the model changed during the prediction; predict again")
    conf = _to_uint8_confidence(pred.confidence)
    project.save_prediction(name, pred.labels, conf, model=str(model))
    return name, pred.labels, conf


def predict_all(
    service: ModelService,
    project: Project,
    names: list[str],
    progress: TileProgress | None = None,
    cancelled: Cancelled | None = None,
) -> Iterator[Progress]:
    """Predict every image in ``names`` that is not reviewed; yields after each image.

    Unreadable images are reported in the progress and skipped; the rest go on.
    ``progress`` sees the tiles of the image in hand; ``cancelled()`` stops the
    run within a moment, also in the middle of a huge image.
    """
    check_model_fits(service, project)
    total = len(names)
    yield Progress(0, total, "")
    for i, name in enumerate(names, 1):
        if cancelled is not None and cancelled():
            return
        error = None
        try:
            reviewed = project.record(name).status is ImageStatus.REVIEWED
            if not reviewed and predict_one(service, project, name, progress, cancelled) is None:
                return  # cancelled in the middle of this image
        except SegStudioError as exc:
            error = str(exc)
            log.warning("predict %s: %s", name, exc)
        except (RuntimeError, OSError, ValueError, MemoryError) as exc:  # one image, not the run
            error = f"{type(exc).__name__}: {exc}"
            log.exception("predict %s failed", name)
        yield Progress(i, total, name, error=error)
