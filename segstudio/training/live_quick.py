"""The live learner from the command line (``segstudio train --quick``) and the choice
of the unlabelled images it replays (:meth:`~segstudio.training.live.LiveLearner.add_replay`)."""

from __future__ import annotations

import logging
from collections.abc import Generator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from segstudio.core.errors import SegStudioError, TrainingError
from segstudio.core.metrics import ConfusionMatrix
from segstudio.model.files import LoadedModel
from segstudio.training.data import TrainingData, check_labels
from segstudio.training.live import LiveConfig, LiveLearner

__all__ = ["REPLAY_IMAGES", "REPLAY_MAX_PIXELS", "QuickProgress", "quick_train", "spread"]

log = logging.getLogger(__name__)

#: Unlabelled images replayed (:meth:`LiveLearner.add_replay`) by the window and ``--replay``.
REPLAY_IMAGES = 10
#: Larger images are not replayed (refused from the file's header, before decoding):
#: a replay should cost about a second, never hold up the learner for minutes.
REPLAY_MAX_PIXELS = 4_000_000


def spread(items: Sequence[Any], k: int = REPLAY_IMAGES) -> list[Any]:
    """Up to ``k`` of ``items`` evenly spaced from first to last (replay wants variety)."""
    if len(items) <= k:
        return list(items)
    return [items[round(i * (len(items) - 1) / max(1, k - 1))] for i in range(k)]


@dataclass(frozen=True)
class QuickProgress:
    """A report of :func:`quick_train`: ``done`` of ``total`` images read, then the fit."""

    kind: str  # "image", "fit", "validation"
    done: int
    total: int
    message: str = ""


def quick_train(
    data: TrainingData,
    base: LoadedModel,
    config: LiveConfig | None = None,
    *,
    device: str = "cpu",
    replay: Sequence[Path] = (),
) -> Generator[QuickProgress, None, tuple[LoadedModel, dict[str, Any] | None]]:
    """Train only the live learner on a dataset; yields progress, returns ``(model, val metrics)``.

    ``replay``: unlabelled images of the same kind, on which the base network's
    confident predictions are replayed (:meth:`LiveLearner.add_replay`; only
    when the base knows every class). The metrics are those of the validation
    images (None without any).
    """
    from segstudio.io.images import read_image

    learner = LiveLearner(base, data.labelset, config, device=device)
    total = len(data.train)
    for i, sample in enumerate(data.train, 1):
        rgb, labels, _ = sample.load()
        check_labels(sample, labels, data.labelset.num_classes)
        learner.add_image(sample.name, rgb, labels)
        yield QuickProgress("image", i, total, sample.name)
    if not learner.images:
        raise TrainingError("no labelled pixels in the training images")
    if replay and not learner.replays:
        log.warning("replay skipped: the base network does not know every class")
    for j, path in enumerate(replay if learner.replays else (), 1):
        try:
            rgb = read_image(path, max_pixels=REPLAY_MAX_PIXELS).rgb
            learner.add_replay(f"replay:{path}", rgb)
        except SegStudioError as exc:  # an unreadable image is one fewer to replay
            log.warning("replay: %s skipped: %s", path, exc)
        yield QuickProgress("replay", j, len(replay), path.name)
    report = learner.fit()
    yield QuickProgress(
        "fit", total, total, f"fitted on {report.samples} pixels in {report.seconds:.1f} s"
    )
    metrics = None
    if data.val:
        cm = ConfusionMatrix(data.labelset.num_classes)
        for j, sample in enumerate(data.val, 1):
            rgb, labels, _ = sample.load()
            cm.update(learner.predict(rgb).labels, labels)
            yield QuickProgress("validation", j, len(data.val), sample.name)
        metrics = cm.compute().to_dict()
        metrics["images"] = len(data.val)
    model = learner.model(
        train_names=[s.name for s in data.train][:1000],
        val_names=[s.name for s in data.val][:1000],
    )
    if metrics is not None:
        model.info = replace(model.info, metrics=metrics)
    return model, metrics
