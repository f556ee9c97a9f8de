"""Fine-tuning as the window and the command line ask for it.

A :class:`FineTuneRequest` says what the user chose (typed, with Enums for
the modes); :func:`run_training` runs it on a snapshot of the project's
labels, in whichever thread drives it, and stores the new model version with
its lineage. A run that was interrupted (the app quit or crashed) is found by
:func:`interrupted_run` and resumed from its last checkpoint.
:func:`summary_lines` is the one place a finished run's before/after and
verdict are put into words.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import shutil
import threading
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segstudio.core.atomic import atomic_write_text
from segstudio.core.errors import SegStudioError
from segstudio.io.project import Project
from segstudio.session.one_click import one_click, say

if TYPE_CHECKING:  # torch: imported by the worker that runs the training, not here
    from segstudio.training.loop import TrainProgress, TrainResult

log = logging.getLogger(__name__)

Option = float | int | bool | str


class StartFrom(Enum):
    """What a fine-tune trains: the active model (or, for a project no model fits
    yet, the bundled model's encoder with a new head), or a new network."""

    ACTIVE = "active"
    NEW = "new"


class Validation(Enum):
    """Which images judge the new model: a share held out automatically, or the
    images the user marked for validation."""

    AUTO = "auto"
    MARKED = "marked"


@dataclass(frozen=True)
class NewArch:
    """The network a fine-tune builds when it starts from nothing."""

    name: str = "segnet"
    params: Mapping[str, float] = field(default_factory=lambda: {"width": 0.5})


@dataclass(frozen=True)
class FineTuneRequest:
    """One fine-tune as the user asked for it.

    ``options`` are :class:`~segstudio.training.loop.TrainConfig` fields the user
    set (minutes or epochs, batch size, learning rate, ...); starting from a
    trained model, the few-shot recipe fills in the rest.
    """

    options: Mapping[str, Option] = field(default_factory=lambda: {"minutes": 5.0, "batch_size": 4})
    start: StartFrom = StartFrom.ACTIVE
    arch: NewArch = field(default_factory=NewArch)
    validation: Validation = Validation.AUTO

    def to_json(self) -> dict[str, object]:
        return {
            "options": dict(self.options),
            "start": self.start.value,
            "arch": {"name": self.arch.name, "params": dict(self.arch.params)},
            "validation": self.validation.value,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FineTuneRequest:
        """Read :meth:`to_json`'s form (and the form of runs interrupted before 0.2)."""
        if "config" in data:  # 0.1: {"config", "start_from_active", "arch": [name, params]}
            name, params = data["arch"]
            return cls(
                dict(data["config"]),
                StartFrom.ACTIVE if data["start_from_active"] else StartFrom.NEW,
                NewArch(str(name), dict(params)),
                Validation(data["validation"]),
            )
        arch = data["arch"]
        return cls(
            dict(data["options"]),
            StartFrom(data["start"]),
            NewArch(str(arch["name"]), dict(arch["params"])),
            Validation(data["validation"]),
        )


@dataclass(frozen=True)
class TrainingOutcome:
    """A finished fine-tune: where the new model version was stored, and how it did."""

    path: Path
    result: TrainResult


def _training_dir(project: Project) -> Path:
    return project.state_dir / "training"


@dataclass(frozen=True)
class InterruptedRun:
    """A fine-tune that the app quit or crashed in, and can resume."""

    folder: Path
    request: FineTuneRequest
    active_model: Path | None  # the model it started from
    step: int | None
    total_steps: int | None
    saved_at: str | None  # when its last checkpoint was written
    live_base: Path | None = None  # what Learn as I paint read then: judged against it

    def where(self) -> str:
        """E.g. "step 40 of 200"."""
        return f"step {self.step}" + (f" of {self.total_steps}" if self.total_steps else "")


def interrupted_run(project: Project) -> InterruptedRun | None:
    """The newest fine-tune that was interrupted (the app quit or crashed mid-run).

    Finished and cancelled runs delete their folder, so any run folder with a
    readable checkpoint and request is one that can be resumed.
    """
    from segstudio.training.checkpoint_meta import checkpoint_info

    root = _training_dir(project)
    if not root.is_dir():
        return None
    for run in sorted(root.iterdir(), reverse=True):
        asked = run / "choice.json"
        info = checkpoint_info(run) if asked.is_file() else None
        if info is None:
            continue
        try:
            stored = json.loads(asked.read_text(encoding="utf-8"))
            request = FineTuneRequest.from_json(stored["choice"])
        except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
            log.warning("%s: cannot resume (%s)", run, exc)
            continue
        model = stored.get("active_model") or None
        live = stored.get("live_base") or None
        return InterruptedRun(
            run,
            request,
            Path(model) if model else None,
            info.get("step"),
            info.get("total_steps"),
            info.get("saved_at"),
            Path(live) if isinstance(live, str) else None,
        )
    return None


def discard_run(run: Path) -> None:
    """Delete a run folder (its checkpoint can be hundreds of MB)."""
    shutil.rmtree(run, ignore_errors=True)


def run_training(
    project: Project,
    active_model: Path | None,
    request: FineTuneRequest,
    cancel: threading.Event,
    resume: Path | None = None,
    keep: threading.Event | None = None,
    live_base: Path | None = None,
) -> Generator[TrainProgress, None, TrainingOutcome | None]:
    """Fine-tune on the project's labels; yields TrainProgress, returns a TrainingOutcome
    (None when cancelled).

    The data is a snapshot taken now, so the user keeps painting meanwhile.
    Setting ``cancel`` stops within one block of the network's compute (the
    training polls it inside every step); nothing is stored then. The new
    model version goes to the project's models folder, with its lineage
    (parent, images, recipe, metrics) in its metadata. Checkpoints go to a run
    folder; ``resume`` (such a folder, see :func:`interrupted_run`) continues
    an interrupted run from its last checkpoint. ``keep`` set when cancelled
    (the app is quitting) keeps that folder, to resume at the next start.
    ``live_base``: the SegNet "Learn as I paint" reads, while it runs: the
    verdict is then against that live learner (see :func:`one_click`).
    """
    from segstudio.core.jobs import relay
    from segstudio.model.arch import ArchSpec
    from segstudio.model.files import load_model, save_model, with_metadata
    from segstudio.training.data import from_project
    from segstudio.training.loop import TrainConfig, TrainingCancelled
    from segstudio.training.recipes import FEW_SHOT

    marked = request.validation is Validation.MARKED
    val_names = project.get_setting("validation_images") if marked else None
    data = from_project(project, val_names=val_names or None)
    if not val_names and len(data.val) < 3 and len(data.train) + len(data.val) >= 6:
        # few images: hold out more of them, so "better" rests on several images
        data = from_project(project, val_fraction=0.3)
    from_active = request.start is StartFrom.ACTIVE and active_model is not None
    # a live model: one_click trains its frozen SegNet and judges against the live learner
    init = load_model(active_model) if from_active and active_model else None
    live = None
    if live_base is not None:  # best effort: a missing or broken file judges as before
        try:
            live = load_model(live_base)
        except SegStudioError as exc:
            yield from say(f"not judged against Learn as I paint: {exc}")
    # from a trained model: the few-shot recipe, where the user chose nothing else
    options = dict(request.options)
    config = TrainConfig.from_dict({**FEW_SHOT, **options} if init else options)
    arch = None if init is not None else ArchSpec(request.arch.name, dict(request.arch.params))
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = resume or _training_dir(project) / stamp
    if resume is None:
        run_dir.mkdir(parents=True, exist_ok=True)
        asked = {
            "choice": request.to_json(),
            "active_model": str(active_model or ""),
            "live_base": str(live_base or ""),
        }
        atomic_write_text(run_dir / "choice.json", json.dumps(asked))
    gen = one_click(
        data,
        init,
        config,
        arch=arch,
        checkpoint_dir=run_dir,
        resume=resume is not None,
        cancel=cancel.is_set,
        live_base=live,
    )
    result = None
    try:  # raised inside a step, within one block's compute
        result = yield from relay(gen, cancel.is_set)
    except TrainingCancelled:
        cancel.set()
    if cancel.is_set() or result is None:
        if keep is None or not keep.is_set():  # quitting keeps the checkpoint to resume
            discard_run(run_dir)
        return None
    path = project.models_dir / f"model-{stamp}.safetensors"
    provenance = {**result.model.info.provenance, "project": str(project.folder)}
    save_model(path, with_metadata(result.model, provenance=provenance))
    discard_run(run_dir)  # the model is stored; the checkpoint is no longer needed
    return TrainingOutcome(path, result)


def summary_lines(result: TrainResult) -> list[str]:
    """A finished run in words: before/after mean IoU and, said plainly, whether it
    improved (the command line prints these; the window shows ``result.verdict``)."""
    before, after = result.before, result.after
    lines = []
    if before is not None:
        lines.append(
            f"before: mean IoU {before['mean_iou']:.4f} on {before['images']} val image(s)"
        )
    if after is not None:
        lines.append(f"after:  mean IoU {after['mean_iou']:.4f} on {after['images']} val image(s)")
    if result.improved is True and before is not None and after is not None:
        delta = after["mean_iou"] - before["mean_iou"]
        lines.append(f"improved: yes, mean IoU +{delta:.4f}")
    elif result.improved is False and before is not None and after is not None:
        delta = before["mean_iou"] - after["mean_iou"]
        lines.append(
            f"improved: no, mean IoU fell by {delta:.4f}; keep using the starting model"
            if delta > 0
            else "improved: no, mean IoU is unchanged"
        )
    elif after is None:
        lines.append("improved: unknown, there are no validation images to score it on")
    elif before is not None:
        lines.append(f"improved: no verdict, {result.verdict}")
    else:
        lines.append("improved: not comparable, the model started from scratch or a new head")
    return lines
