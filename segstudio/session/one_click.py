"""The one-click fine-tune (:func:`one_click`): train, judge on held-out images,
then (as the recipe says) refit on every labelled image, add a live head, and
judge against the live learner in use. Torch is imported inside, by the worker
that runs the training."""

from __future__ import annotations

import logging
from collections.abc import Generator
from typing import TYPE_CHECKING

from segstudio.core.errors import SegStudioError, TrainingError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from segstudio.model.arch import ArchSpec
    from segstudio.model.files import LoadedModel
    from segstudio.training.config import TrainConfig
    from segstudio.training.data import TrainingData
    from segstudio.training.live import LiveLearner
    from segstudio.training.loop import TrainProgress, TrainResult

__all__ = ["one_click", "say"]

log = logging.getLogger(__name__)


def one_click(
    data: TrainingData,
    init: LoadedModel | None,
    config: TrainConfig,
    *,
    arch: ArchSpec | None = None,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    cancel: Callable[[], bool] | None = None,
    live_base: LoadedModel | None = None,
) -> Generator[TrainProgress, None, TrainResult]:
    """The fine-tune one click runs: train, judge on the held-out images, then (as the
    recipe says) train once more on every labelled image or add a live head.

    The first run trains on ``data.train`` and is judged on ``data.val``
    (``keep_best``: the best weights on them are kept). With ``refit_all``,
    from a trained model, and when that run was better on validation, a
    second run starts again from ``init`` on the training and the validation
    images together, for as many epochs as the kept weights of the first run
    had trained (a schedule fixed before it starts, so nothing is chosen on
    images it trains on), and its weights are the result. The verdict, the
    before and after metrics are those of the first run, on images it never
    saw, and the verdict says that the model handed back learnt from all the
    images. The second run keeps no checkpoint: a resumed run repeats it.

    With ``live_head`` (from a SegNet), the live learner then reads the
    fine-tuned network and fits its head on the training images' pixels (and
    replays the network's sure answers on ``data.unlabelled``); the
    head is judged on the held-out images against the starting model (and the
    network alone), and only when it beats both is it fitted on every labelled
    image and handed back, a ``live`` model whose verdict says so. Otherwise
    the deep result stands, so the rule never hands back a model that scores
    below its start on the held-out images.

    ``live_base``: the SegNet "Learn as I paint" reads while the user labels
    (from a live model ``init``: its own). The verdict is then against that
    live learner: a head of its recipe on ``live_base``, fitted on the same
    training images, scored on the same held-out ones (:func:`_against_live`).
    "Better" then means better than what the user labels with now, on images
    neither saw. A live model ``init`` trains its frozen SegNet deep.

    Yields :class:`~segstudio.training.events.TrainProgress`; returns the
    :class:`~segstudio.training.config.TrainResult`.
    """
    from segstudio.model.live import base_model
    from segstudio.training.loop import fine_tune

    if init is not None and init.info.arch.name == "live":
        # a live model in use: its frozen SegNet is what trains deep, and the run is
        # "better" only when it beats that live learner (see _against_live)
        live_base = live_base or init
        init = base_model(init)
    if live_base is not None and live_base.info.arch.name == "live":
        try:  # its head learnt the held-out images too: its SegNet, with a fresh head
            live_base = base_model(live_base)
        except SegStudioError as exc:
            yield from say(f"not judged against Learn as I paint: {exc}")
            live_base = None
    if config.replay and init is not None and data.unlabelled:
        data = yield from _with_replay(data, init, cancel)
    gen = fine_tune(
        data,
        init=init,
        arch=arch,
        config=config,
        checkpoint_dir=checkpoint_dir,
        resume=resume,
        cancel=cancel,
    )
    first = yield from gen
    if config.refit_all and init is not None and data.val and first.improved:
        first = yield from _refit(data, init, config, first, cancel)
    # the live learner reads a SegNet's features; other networks keep the deep result
    if config.live_head and init is not None and data.val and init.info.arch.name == "segnet":
        first = yield from _live_head(data, init, config, first)
    if live_base is not None and data.val:
        first = yield from _against_live(data, live_base, config, first, cancel)
    return first


def _with_replay(
    data: TrainingData, init: LoadedModel, cancel: Callable[[], bool] | None = None
) -> Generator[TrainProgress, None, TrainingData]:
    """``data`` and, as more training images, ``init``'s sure answers (confidence
    >= 0.9, the rest unlabelled) on up to 10 of ``data.unlabelled`` spread over
    them; ``data`` alone when ``init`` lacks one of its classes. ``cancel`` is
    checked inside each prediction (:class:`TrainingCancelled`)."""
    import dataclasses

    from segstudio.io.images import read_image
    from segstudio.model.predictor import PredictionCancelled, Predictor
    from segstudio.training.data import Sample
    from segstudio.training.events import ProgressKind, TrainProgress
    from segstudio.training.live_config import LiveConfig
    from segstudio.training.live_quick import REPLAY_MAX_PIXELS, spread
    from segstudio.training.step import TrainingCancelled

    if init.info.labelset.names != data.labelset.names:
        return data
    predictor = Predictor(init)
    sure = LiveConfig().replay_confidence
    samples = []
    chosen = spread(data.unlabelled)
    yield TrainProgress(
        ProgressKind.MESSAGE,
        message=f"reading the starting model's answers on {len(chosen)} unlabelled image(s)",
    )
    for path in chosen:
        try:
            rgb = read_image(path, max_pixels=REPLAY_MAX_PIXELS).rgb
        except SegStudioError as exc:  # a broken or huge image is skipped
            log.info("not replayed: %s", exc)
            continue
        try:
            pred = predictor.predict(rgb, cancelled=cancel)
        except PredictionCancelled as exc:
            raise TrainingCancelled("training cancelled") from exc
        samples.append(Sample(path.name, path, labels=pred.sure(sure), replayed=True))
    yield TrainProgress(
        ProgressKind.MESSAGE,
        message=f"also learning the starting model's sure answers on {len(samples)} "
        "unlabelled image(s), so that it keeps what it knew (they count among the "
        "training images below)",
    )
    return dataclasses.replace(data, train=data.train + tuple(samples))


def _refit(
    data: TrainingData,
    init: LoadedModel,
    config: TrainConfig,
    first: TrainResult,
    cancel: Callable[[], bool] | None,
) -> Generator[TrainProgress, None, TrainResult]:
    """``refit_all``: the same recipe again from ``init`` on every labelled image."""
    import dataclasses

    from segstudio.training.data import TrainingData as Data
    from segstudio.training.loop import fine_tune

    prov = first.model.info.provenance
    best_step = prov.get("best_step") or 0
    steps_per_epoch = max(1, -(-len(data.train) // config.batch_size))
    epochs = max(1, round(best_step / steps_per_epoch))
    every = Data(data.train + data.val, (), data.labelset, data.source)
    again = dataclasses.replace(
        config, epochs=epochs, minutes=None, keep_best=False, patience=0, refit_all=False
    )
    yield from say(
        f"refit: training again from the start on all {len(every.train)} labelled images "
        f"for {epochs} epoch(s), as the kept weights had; the verdict stays the one on "
        f"the {len(data.val)} held-out image(s)"
    )
    second = yield from fine_tune(every, init=init, config=again, cancel=cancel)
    model = second.model
    info = dataclasses.replace(
        model.info,
        provenance={
            **prov,
            "refit": {
                "images": len(every.train),
                "epochs": epochs,
                "steps": model.info.provenance.get("steps"),
                "duration_s": model.info.provenance.get("duration_s"),
                "recipe": again.to_dict(),
            },
        },
        metrics=dict(first.model.info.metrics),
    )
    return dataclasses.replace(
        first,
        model=dataclasses.replace(model, info=info),
        verdict=f"{first.verdict}; then retrained the same way on all "
        f"{len(every.train)} labelled images ({epochs} epoch(s)): the model handed back",
    )


def _fitted_live(
    base: LoadedModel,
    data: TrainingData,
    *,
    labelled_only: bool = False,
    cancel: Callable[[], bool] | None = None,
) -> LiveLearner | None:
    """A live learner on ``base`` fitted on the pixels of ``data.train`` (and, where
    it replays, ``base``'s sure answers on up to 10 of ``data.unlabelled``); None
    when no training image has labels. ``labelled_only``: without the training
    images that are a start model's replayed answers (as Learn as I paint learns).

    Raises
    ------
    TrainingCancelled
        ``cancel()`` answered True.
    """
    from segstudio.io.images import read_image
    from segstudio.model.predictor import PredictionCancelled
    from segstudio.training.live import LiveLearner
    from segstudio.training.live_quick import REPLAY_MAX_PIXELS, spread
    from segstudio.training.step import TrainingCancelled

    learner = LiveLearner(base, data.labelset)
    for sample in data.train:
        if labelled_only and sample.replayed:
            continue
        rgb, labels, _ = sample.load()
        learner.add_image(sample.name, rgb, labels)
    if not learner.images:
        return None
    if learner.replays:  # the network's sure answers on unlabelled images
        for path in spread(data.unlabelled):
            try:
                rgb = read_image(path, max_pixels=REPLAY_MAX_PIXELS).rgb
                learner.add_replay(str(path), rgb, cancelled=cancel)
            except PredictionCancelled as exc:
                raise TrainingCancelled("training cancelled") from exc
            except SegStudioError as exc:
                log.info("live head: %s not replayed: %s", path, exc)
    learner.fit(cancelled=cancel)
    if cancel is not None and cancel():
        raise TrainingCancelled("training cancelled")
    return learner


def _against_live(
    data: TrainingData,
    base: LoadedModel,
    config: TrainConfig,
    result: TrainResult,
    cancel: Callable[[], bool] | None = None,
) -> Generator[TrainProgress, None, TrainResult]:
    """Judge ``result`` against the live learner that reads the SegNet ``base``.

    The live model in use has learnt from every labelled image, the held-out
    ones too, so its own score on them would flatter it: its recipe is fitted
    afresh on ``base`` with the training images alone and scored on the
    held-out ones. ``result`` keeps its model; its ``before``, ``improved`` and
    verdict become those against that live learner.
    """
    import dataclasses

    from segstudio.training.evaluate import evaluate, verdict

    if result.after is None:
        return result
    labelled = sum(1 for s in data.train if not s.replayed)
    yield from say(
        "the live learner in use: fitting its head afresh on the same "
        f"{labelled} labelled training image(s), to score it on the held-out ones"
    )
    try:
        learner = _fitted_live(base, data, labelled_only=True, cancel=cancel)
    except TrainingError as exc:  # e.g. not a SegNet: the run's own verdict stands
        yield from say(f"not judged against Learn as I paint: {exc}")
        return result
    if learner is None:
        return result
    live = evaluate(learner.model(), data.val)
    live["images"] = len(data.val)
    than = " than the live learner in use"
    improved, against = verdict(
        live, result.after, config.verdict_pixels, kept_start=False, than=than
    )
    if improved is None:
        against = f"against the live learner in use: {against}"
    against += " (that learner's head refitted on the same training images)"
    if improved is False:
        against += "; keep using it"
    yield from say(f"{against}.")
    prov = {
        **result.model.info.provenance,
        "against_live": {"base": None if base.path is None else str(base.path), "after": live},
    }
    model = dataclasses.replace(
        result.model, info=dataclasses.replace(result.model.info, provenance=prov)
    )
    return dataclasses.replace(
        result,
        model=model,
        before=live,
        improved=improved,
        verdict=f"{against}. The run: {result.verdict}",
    )


def _live_head(
    data: TrainingData, init: LoadedModel, config: TrainConfig, first: TrainResult
) -> Generator[TrainProgress, None, TrainResult]:
    """``live_head``: the fine-tuned SegNet read by the live learner, whose head is
    fitted on the training images' pixels and judged on the held-out images
    against the starting model (when it knows the classes) and the fine-tuned
    network alone; when better than both, fitted again on every labelled image
    and handed back (a ``live`` model), else the deep run's result stands."""
    import dataclasses

    from segstudio.training.evaluate import evaluate, verdict

    yield from say("live head: fitting on the fine-tuned network's features")
    learner = _fitted_live(first.model, data)
    if learner is None:
        return first
    replayed = len(learner.replayed)
    yield from say(
        f"live head: fitted on the pixels of {len(learner.images)} image(s)"
        + (f" and the network's sure answers on {replayed} unlabelled one(s)" if replayed else "")
    )
    after = evaluate(learner.model(), data.val)
    after["images"] = len(data.val)
    before = first.before  # None for new classes: the start cannot be scored on them
    deep = first.after["mean_iou"] if first.after else None
    bar = max(-1.0 if before is None else before["mean_iou"], -1.0 if deep is None else deep)
    if after["mean_iou"] <= bar:
        yield from say(
            f"live head: mIoU {after['mean_iou']:.4f} on the held-out image(s), no better "
            "than the fine-tuned network alone or the start: not used"
        )
        return first
    improved, sentence = verdict(before, after, config.verdict_pixels, kept_start=False)
    for sample in data.val:  # the verdict is given: now learn from every labelled image
        rgb, labels, _ = sample.load()
        learner.add_image(sample.name, rgb, labels)
    learner.fit()
    fitted = len(learner.images)
    replayed_too = sum(1 for sample in data.train if sample.replayed)
    all_of = f"all {fitted}" + (f", {replayed_too} of them replayed" if replayed_too else "")
    deep_prov = dict(first.model.info.provenance)
    model = learner.model(
        # the fine-tuned network was never saved: the lineage goes on from where it started
        parent=dict(deep_prov.get("parent") or {}),
        deep=deep_prov,
        live_head={"images": fitted, "val_mean_iou_before_refit": after["mean_iou"]},
        before_mean_iou=None if before is None else before["mean_iou"],
        after_mean_iou=after["mean_iou"],
    )
    model.info = dataclasses.replace(model.info, metrics=dict(after))
    yield from say(
        f"live head: mIoU {after['mean_iou']:.4f} on the held-out image(s) (the network "
        f"alone: {deep if deep is None else round(deep, 4)}); fitted again on {all_of}"
    )
    return dataclasses.replace(
        first,
        model=model,
        after=after,
        improved=improved,
        verdict=f"{sentence} (the fine-tuned network with a live head fitted on the "
        f"training images; the model handed back has its head fitted on {all_of})",
    )


def say(message: str) -> Generator[TrainProgress, None, None]:
    """One message for the run's log (the Training panel, the command line)."""
    from segstudio.training.events import ProgressKind, TrainProgress

    yield TrainProgress(kind=ProgressKind.MESSAGE, message=message)
