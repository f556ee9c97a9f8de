"""The fine-tune loop: a generator that yields progress after every optimisation step.

:func:`fine_tune` trains a network on a :class:`~segstudio.training.data.TrainingData`
and yields a :class:`~segstudio.training.events.TrainProgress` after every step,
every validation image, every checkpoint and every notice; its return value
(``StopIteration.value``) is a :class:`~segstudio.training.config.TrainResult`.
A caller stops it at once by closing the generator or simply by not asking for
the next item: all work happens between two yields, no thread is started, and
every file is written atomically, so nothing half-done is left behind.

What it does
------------
- **Model** (:mod:`~segstudio.training.lineage`): ``init`` (copied, never
  changed; with other classes only its encoder is kept) or a new ``arch``.
- **Steps** (:mod:`~segstudio.training.step`): weighted cross-entropy, corrected
  pixels counting more; a NaN or infinite loss stops the run (``stopped_early``)
  with the weights of the last good step; out of memory splits the batch, then
  the crop. bf16 autocast where fast (:mod:`~segstudio.training.precision`).
- **Reproducible**: initialisation, epoch order and augmentation are seeded by
  ``config.seed``; with fp32 on the CPU two runs give the same losses.
- **Validation** (:mod:`~segstudio.training.evaluate`): every
  ``val_every_epochs`` epochs, on the full validation images. The model
  returned is the final one (unless ``keep_best``): picking the best of many
  evaluations on a project's few validation images would flatter it.
  ``before``, ``after`` and ``improved`` say plainly whether it scores better
  than the starting one, and the caller decides whether to use it.
- **Checkpoints** (:mod:`~segstudio.training.checkpoint`): every
  ``checkpoint_every_s`` seconds and at the end; ``resume=True`` continues from
  one and ends at the same step count. A checkpoint that cannot be written (a
  full disk) is reported as a message and training goes on: the run still ends
  with its model. Temporary files of checkpoints a kill cut short are removed
  when the next run starts.
- **Cancel**: between yields nothing is pending; closing the generator (or
  dropping it) leaves the last periodic checkpoint, from which a run resumes.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import torch

from segstudio.core.errors import TrainingError
from segstudio.model.arch import ArchSpec, resolve_spec
from segstudio.model.files import LoadedModel, ModelInfo, Normalization
from segstudio.training import ddp
from segstudio.training.checkpoint import (
    CHECKPOINT_NAME,
    RunState,
    check_same_run,
    checkpoint_info,
    load_checkpoint,
    read_checkpoint,
    run_identity,
    sweep_checkpoint_temps,
    teacher_identity,
    write_checkpoint,
)
from segstudio.training.config import DEFAULT_CONFIG, TrainConfig, TrainResult
from segstudio.training.data import TrainingData
from segstudio.training.evaluate import NetworkPredict, evaluate, score, verdict
from segstudio.training.events import ProgressKind, TrainProgress
from segstudio.training.lineage import Head, provenance, start_network
from segstudio.training.precision import amp_name, resolve_amp, training_device
from segstudio.training.recipes import FEW_SHOT
from segstudio.training.step import (
    Stepper,
    TrainingCancelled,
    loss_class_weights,
    lr_factor,
    weighted_cross_entropy,
)

# The names callers import from here (the window, the CLI, scripts) live in the
# modules above; they stay importable from this module.
__all__ = [
    "CHECKPOINT_NAME",
    "DEFAULT_CONFIG",
    "FEW_SHOT",
    "TrainConfig",
    "TrainProgress",
    "TrainResult",
    "TrainingCancelled",
    "checkpoint_info",
    "evaluate",
    "fine_tune",
    "weighted_cross_entropy",
]

log = logging.getLogger(__name__)

#: A new head (or a new network) starts from random weights, and its first
#: validations say little: early stopping (``patience``) counts from this step
#: on. A few-shot run on 4 images stopped after 8 steps with a network that
#: called every pixel horse (Weizmann horses, 2026-12-04).
NEW_HEAD_MIN_STEPS = 60


class _Run:
    """One call of :func:`fine_tune`: set-up in :meth:`run`, then the loop."""

    def __init__(
        self,
        data: TrainingData,
        init: LoadedModel | None,
        arch: ArchSpec | None,
        config: TrainConfig,
        checkpoint_dir: Path | None,
        resume: bool,
        cancel: Callable[[], bool] | None = None,
        teacher: LoadedModel | None = None,
    ) -> None:
        self.cancel = cancel
        self.teacher = teacher
        self.teacher_id = teacher_identity(None if teacher is None else teacher.network)
        self.data = data
        self.init = init
        self.arch = resolve_spec(init.info.arch if init is not None else arch)  # type: ignore[arg-type]
        self.config = config
        self.checkpoint_dir = checkpoint_dir
        self.resume = resume
        self.state = RunState(micro=config.batch_size, crop=config.crop)
        self.best_state: dict[str, torch.Tensor] | None = None

    # --------------------------------------------------------------- progress

    def _elapsed(self) -> float:
        return self.state.elapsed_s + (time.monotonic() - self.t0)

    def _progress(self) -> float:
        if self.config.minutes is not None:
            return self._elapsed() / (self.config.minutes * 60.0)
        return self.state.step / max(1, self.total_steps or 1)

    def _report(self, kind: ProgressKind, **kw: Any) -> TrainProgress:
        step = self.state.step
        return TrainProgress(
            kind=kind,
            step=step,
            total_steps=self.total_steps,
            epoch=0 if step == 0 else (step - 1) // self.steps_per_epoch + 1,
            epoch_float=step / self.steps_per_epoch,
            **kw,
        )

    def _message(self, text: str) -> TrainProgress:
        log.info("%s", text)
        return self._report(ProgressKind.MESSAGE, message=text)

    def _budget_spent(self) -> bool:
        """Whether the time budget is used up; under DDP rank 0's clock decides for all,
        so no rank leaves the loop while the others wait in a collective."""
        assert self.config.minutes is not None
        spent = self._elapsed() >= self.config.minutes * 60.0
        if not self.env.distributed:
            return spent
        flag = torch.tensor([1.0 if (spent and self.env.is_main) else 0.0], device=self.device)
        ddp.all_reduce_sum(flag, self.env)
        return bool(flag.item() > 0)

    def _eta(self, step_time: float | None) -> float | None:
        if self.config.minutes is not None:
            return max(0.0, self.config.minutes * 60.0 - self._elapsed())
        if step_time is None or self.total_steps is None:
            return None
        return step_time * (self.total_steps - self.state.step)

    # ------------------------------------------------------------- validation

    def _validate(self, label: str) -> Generator[TrainProgress, None, dict[str, Any] | None]:
        if not self.data.val or not self.env.is_main:
            return None
        n = len(self.data.val)
        self.network.eval()
        predict = NetworkPredict(self.network, self.info, self.device, self.amp)
        steps = score(predict, self.data.val, self.data.labelset)
        try:
            while True:
                try:
                    done = next(steps)
                except StopIteration as stop:
                    metrics: dict[str, Any] = stop.value
                    break
                note = f"{label}: validating {done}/{n}"
                yield self._report(ProgressKind.VALIDATION, message=note)
        finally:
            self.stepper.train_mode()
        yield self._report(
            ProgressKind.VALIDATION,
            metrics=metrics,
            message=f"{label}: mean IoU {metrics['mean_iou']:.4f} on {n} validation image(s)",
        )
        return metrics

    def _track_best(self, metrics: dict[str, Any] | None) -> None:
        """keep_best: remember the weights of the best validation so far."""
        st = self.state
        if not self.config.keep_best or metrics is None:
            return
        if st.best_metrics is None or metrics["mean_iou"] > st.best_metrics["mean_iou"]:
            st.best_metrics, st.best_step, st.stale_validations = metrics, st.step, 0
            self.best_state = {
                k: v.detach().to("cpu", copy=True) for k, v in self.network.state_dict().items()
            }
        else:
            st.stale_validations += 1

    # ------------------------------------------------------------ checkpoints

    def _checkpoint(self) -> Generator[TrainProgress, None, None]:
        """Write a checkpoint and report it; a failed write (a full disk) is reported
        as a message and costs only the checkpoint: training goes on."""
        try:
            path = self._save_checkpoint()
        except TrainingError as exc:
            self.last_checkpoint = time.monotonic()  # try again after the interval
            yield self._message(
                f"{exc}: training goes on; a resume would start from the last checkpoint "
                "that was written"
            )
            return
        if path is not None:
            yield self._report(ProgressKind.CHECKPOINT, message=str(path))

    def _save_checkpoint(self) -> Path | None:
        if self.checkpoint_dir is None or not self.env.is_main:
            return None
        st = self.state
        meta = {
            **st.to_meta(self._elapsed()),
            **run_identity(self.data, self.config, self.arch.to_dict(), self.env.world_size),
            "total_steps": self.total_steps,
            "steps_per_epoch": self.steps_per_epoch,
            "epoch_float": st.step / self.steps_per_epoch,
            "head": self.head.value,
            "teacher": self.teacher_id,
            "init_path": None
            if self.init is None or self.init.path is None
            else str(self.init.path),
        }
        path = write_checkpoint(
            self.checkpoint_dir,
            meta,
            network=self.network,
            optimizer=self.optimizer,
            scaler=self.scaler,
            best_state=self.best_state,
        )
        self.last_checkpoint = time.monotonic()
        return path

    def _load_checkpoint(self) -> None:
        assert self.checkpoint_dir is not None
        meta, path = read_checkpoint(self.checkpoint_dir)
        check_same_run(
            meta,
            path,
            data=self.data,
            config=self.config,
            arch=self.arch.to_dict(),
            world_size=self.env.world_size,
            teacher=self.teacher_id,
        )
        self.best_state = load_checkpoint(
            path, meta, network=self.network, optimizer=self.optimizer, scaler=self.scaler
        )
        self.state.load_meta(meta)

    # ------------------------------------------------------------------ run

    def _setup(self) -> Generator[TrainProgress, None, None]:
        """Device, network, optimiser and class weights; resume, or score the start."""
        cfg, data = self.config, self.data
        self.env = ddp.current()
        self.device = training_device(cfg.device, self.env)
        self.amp, use_scaler = resolve_amp(self.device, cfg.precision)
        torch.manual_seed(cfg.seed)
        network, self.head = start_network(self.init, self.arch, data.labelset, cfg.seed)
        self.network = network
        self.info = ModelInfo(
            arch=self.arch,
            labelset=data.labelset,
            normalization=self.init.info.normalization if self.init else Normalization(),
        )
        per_rank = math.ceil(len(data.train) / self.env.world_size)
        self.steps_per_epoch = math.ceil(per_rank / cfg.batch_size)
        self.total_steps = None if cfg.epochs is None else cfg.epochs * self.steps_per_epoch

        yield self._message(data.describe())
        if self.head == Head.NEW_HEAD:
            assert self.init is not None
            yield self._message(
                f"the starting model's classes ({', '.join(self.init.info.labelset.names)}) "
                f"differ from the data's ({', '.join(data.labelset.names)}): the new model "
                "keeps the encoder and gets a new head"
            )
        weights = loss_class_weights(data, cfg.class_weighting)
        self.class_weight_list = [round(float(w), 4) for w in weights]

        self.stepper = Stepper(
            train=data.train,
            config=cfg,
            state=self.state,
            network=network,
            info=self.info,
            weights=weights,
            device=self.device,
            amp=self.amp,
            use_scaler=use_scaler,
            env=self.env,
            cancel=self.cancel,
            teacher=self.teacher,
            # whose batch-norm statistics were trained: a new head keeps only the encoder
            trained_stats={
                Head.KEPT: network,
                Head.NEW_HEAD: getattr(network, "encoder", None),
            }.get(self.head),
        )
        self.optimizer, self.scaler = self.stepper.optimizer, self.stepper.scaler
        self.last_checkpoint = time.monotonic()
        if self.checkpoint_dir is not None and self.env.is_main:
            try:
                self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise TrainingError(
                    f"{self.checkpoint_dir}: cannot create the checkpoint folder ({exc})"
                ) from exc
            sweep_checkpoint_temps(self.checkpoint_dir)  # what killed runs left

        st = self.state
        if self.resume:
            self._load_checkpoint()
            yield self._message(
                f"resumed from step {st.step}"
                + (f" of {self.total_steps}" if self.total_steps else "")
                + f" ({self.checkpoint_dir / CHECKPOINT_NAME})"
            )
        elif self.head == Head.KEPT and data.val:
            st.before = yield from self._validate("starting model")
            self._track_best(st.before)

        self.stepper.distribute()

    def run(self) -> Generator[TrainProgress, None, TrainResult]:
        cfg, data, st = self.config, self.data, self.state
        started = time.monotonic()
        self.t0 = started
        yield from self._setup()
        self.stepper.train_mode()
        self.t0 = time.monotonic()

        stopped: str | None = None
        step_time: float | None = None
        ips: float | None = None
        spe = self.steps_per_epoch
        while True:
            epochs_done, pos = divmod(st.step, spe)
            if (
                data.val
                and st.step > 0
                and pos == 0
                and epochs_done % cfg.val_every_epochs == 0
                and st.val_step != st.step
            ):
                st.last_metrics = yield from self._validate(f"epoch {epochs_done}")
                st.val_step = st.step
                self._track_best(st.last_metrics)
                if (
                    cfg.patience
                    and st.stale_validations >= cfg.patience
                    and (self.head == Head.KEPT or st.step >= NEW_HEAD_MIN_STEPS)
                ):
                    yield self._message(
                        f"validation has not improved for {st.stale_validations} epoch(s): "
                        "stopping early"
                    )
                    break
            if self.total_steps is not None and st.step >= self.total_steps:
                break
            if cfg.minutes is not None and self._budget_spent():
                break
            epoch = epochs_done
            order = ddp.shard_indices(
                len(data.train),
                seed=cfg.seed,
                epoch=epoch,
                rank=self.env.rank,
                world_size=self.env.world_size,
            )
            indices = order[pos * cfg.batch_size : (pos + 1) * cfg.batch_size]
            t = time.monotonic()
            lr = cfg.lr * lr_factor(cfg, st.step, self._progress(), self.total_steps)
            loss, stopped, notes = self.stepper.step(indices, epoch, lr)
            for note in notes:
                yield self._message(note)
            if stopped is not None:
                yield self._message(stopped)
                break
            st.step += 1
            dt = time.monotonic() - t
            step_time = dt if step_time is None else 0.8 * step_time + 0.2 * dt
            rate = len(indices) * self.env.world_size / max(dt, 1e-9)
            ips = rate if ips is None else 0.8 * ips + 0.2 * rate
            if loss is not None:
                st.history.append(round(loss, 6))
            yield self._report(
                ProgressKind.STEP,
                loss=loss,
                lr=self.optimizer.param_groups[0]["lr"],
                images_per_s=ips,
                eta_s=self._eta(step_time),
            )
            if (
                self.checkpoint_dir is not None
                and time.monotonic() - self.last_checkpoint >= cfg.checkpoint_every_s
            ):
                yield from self._checkpoint()

        if stopped is None:
            yield from self._checkpoint()
        if data.val and self.env.is_main:
            if st.val_step == st.step and st.last_metrics is not None:
                after = st.last_metrics
            else:
                after = yield from self._validate("final model")
        else:
            after = None
        best = st.best_metrics
        kept_start = False
        if (
            cfg.keep_best
            and after is not None
            and best is not None
            and self.best_state is not None
            and best["mean_iou"] > after["mean_iou"]
        ):
            self.network.load_state_dict(self.best_state)
            after = best
            kept_start = st.best_step == 0
            yield self._message(
                "kept the starting weights: no epoch beat them on validation"
                if st.best_step == 0
                else f"kept the weights of step {st.best_step}, the best on validation"
            )
        # every run of a resumed training counts, not only this one
        duration = self._elapsed() + (self.t0 - started)
        return self._result(after, stopped, duration, kept_start)

    def _result(
        self,
        after: dict[str, Any] | None,
        stopped: str | None,
        duration: float,
        kept_start: bool = False,
    ) -> TrainResult:
        """``kept_start``: the best weights restored at the end were the starting ones
        (final weights kept, or a later step's restored, are not)."""
        cfg, data, st = self.config, self.data, self.state
        network = self.stepper.release()
        before = st.before if self.head == Head.KEPT else None
        improved, sentence = verdict(before, after, cfg.verdict_pixels, kept_start=kept_start)
        lineage = provenance(
            head=self.head,
            init=self.init,
            data=data,
            config=cfg,
            state=st,
            steps_per_epoch=self.steps_per_epoch,
            total_steps=self.total_steps,
            duration_s=duration,
            stopped_early=stopped,
            device=str(self.device),
            precision=amp_name(self.amp),
            world_size=self.env.world_size,
            class_weights=self.class_weight_list,
            before=before,
            after=after,
        )
        if self.teacher is not None:
            lineage["teacher"] = {
                "path": None if self.teacher.path is None else str(self.teacher.path),
                "arch": self.teacher.info.arch.to_dict(),
                "mean_iou": self.teacher.info.metrics.get("mean_iou"),
                "distill_weight": cfg.distill_weight,
                "distill_temperature": cfg.distill_temperature,
                **(self.teacher_id or {}),
            }
        if cfg.keep_best:
            lineage["best_step"] = st.best_step  # the step of the kept weights (0: the start)
        info = ModelInfo(
            arch=self.arch,
            labelset=data.labelset,
            normalization=self.info.normalization,
            provenance=lineage,
            metrics=dict(after) if after is not None else {},
        )
        return TrainResult(
            model=LoadedModel(info, network),
            before=before,
            after=after,
            improved=improved,
            stopped_early=stopped,
            verdict=sentence,
        )


def fine_tune(
    data: TrainingData,
    *,
    init: LoadedModel | None = None,
    arch: ArchSpec | None = None,
    config: TrainConfig = DEFAULT_CONFIG,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    cancel: Callable[[], bool] | None = None,
    teacher: LoadedModel | None = None,
) -> Generator[TrainProgress, None, TrainResult]:
    """Train a model, yielding progress after every step; return a :class:`TrainResult`.

    Arguments are checked at once (errors raise here); the training itself
    runs as the returned generator is iterated, in the calling thread. Drive
    it from one thread; stop it by closing it (or by no longer iterating).

    Parameters
    ----------
    data : TrainingData
        Training and validation samples and their label set.
    init : LoadedModel, optional
        The model to start from; it is copied, never changed. When its classes
        differ from ``data.labelset``, its encoder is kept and the head is new.
    arch : ArchSpec, optional
        Start from a new network of this architecture instead. Exactly one of
        ``init`` and ``arch`` must be given.
    config : TrainConfig
        The recipe.
    checkpoint_dir : Path, optional
        Where to keep ``checkpoint.safetensors`` (created if needed); None: no
        checkpoints, no resume.
    resume : bool
        Continue from the checkpoint in ``checkpoint_dir`` (same recipe and data).
    cancel : callable, optional
        Polled inside every step (before each block's forward and backward);
        when it returns True the step is dropped and :class:`TrainingCancelled`
        is raised out of the generator. Without it, a cancel (closing the
        generator) waits for the step in flight.
    teacher : LoadedModel, optional
        Distil: a model with the same classes whose outputs the network is also
        trained to match (``config.distill_weight``, ``distill_temperature``),
        on every pixel of every crop. It is used as it is, never changed.

    Returns
    -------
    Generator
        Yields :class:`TrainProgress`; its return value is the :class:`TrainResult`.

    Raises
    ------
    TrainingError
        Neither or both of ``init``/``arch``; ``resume`` without a checkpoint;
        later, while iterating: a checkpoint of another run, unreadable or
        mismatched label maps, out of memory at the smallest batch and crop.
    """
    if (init is None) == (arch is None):
        raise TrainingError("give exactly one of init (a model to fine-tune) or arch (a new model)")
    if not isinstance(config, TrainConfig):
        raise TrainingError(f"config must be a TrainConfig, got {type(config).__name__}")
    if not isinstance(data, TrainingData):
        raise TrainingError(f"data must be TrainingData, got {type(data).__name__}")
    if init is not None and len(init.info.normalization.mean) != 3:
        raise TrainingError("the starting model does not take RGB images")
    if teacher is not None:
        if teacher.info.labelset.names != data.labelset.names:
            raise TrainingError(
                "the teacher model's classes ("
                + ", ".join(teacher.info.labelset.names)
                + ") are not the data's ("
                + ", ".join(data.labelset.names)
                + "): a teacher must have the same classes in the same order"
            )
        if len(teacher.info.normalization.mean) != 3:
            raise TrainingError("the teacher model does not take RGB images")
    if resume:
        if checkpoint_dir is None:
            raise TrainingError("resuming needs the checkpoint folder")
        read_checkpoint(Path(checkpoint_dir))
    folder = None if checkpoint_dir is None else Path(checkpoint_dir)
    return _Run(data, init, arch, config, folder, resume, cancel, teacher).run()
