"""One optimisation step of a fine-tune, and what it is built from.

:class:`Stepper` loads and augments a batch, accumulates the gradients of the
weighted loss, guards against NaN or infinite values and out-of-memory errors,
and applies the step; the loop in :mod:`segstudio.training.loop` decides which
images and which learning rate. Also here: the loss
(:func:`weighted_cross_entropy`), the optimiser's parameter groups
(:func:`build_optimizer`), the learning-rate schedule (:func:`lr_factor`) and
the cancel checks inside a step (:func:`install_cancel_checks`).

- **Loss**: cross-entropy, unlabeled pixels (255) ignored, each pixel weighted
  by its class weight times its weight-map value; ``sum(weight * loss) / sum(weight)``.
- **NaN or infinite loss** (or gradient): the step is not applied and batch-norm
  statistics are restored; the step reports why training must stop.
- **Out of memory**: the step is retried with the batch split into
  micro-batches of half the size (gradients accumulated, so the step means
  the same), down to one image; then with half the crop, down to
  :data:`~segstudio.training.config.MIN_CROP` pixels.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from segstudio.core.errors import TrainingError
from segstudio.core.labelset import UNLABELED
from segstudio.model.files import LoadedModel, ModelInfo
from segstudio.training import ddp
from segstudio.training.augment import augment, preset
from segstudio.training.checkpoint import RunState
from segstudio.training.config import (
    MIN_CROP,
    ClassWeighting,
    Optimizer,
    Schedule,
    TrainConfig,
)
from segstudio.training.data import (
    Sample,
    TrainingData,
    check_labels,
    median_frequency_weights,
)
from segstudio.training.evaluate import NetworkPredict
from segstudio.training.precision import autocast, memory_format

__all__ = [
    "MAX_GRAD_NORM",
    "Stepper",
    "TrainingCancelled",
    "build_optimizer",
    "distillation_loss",
    "install_cancel_checks",
    "loss_class_weights",
    "lr_factor",
    "weighted_cross_entropy",
]

#: Gradients are clipped to this global norm, a guard against rare spikes.
MAX_GRAD_NORM = 10.0
#: The learning rate decays to this fraction of ``lr``, never to zero.
_LR_FLOOR = 0.01
_OOM_PATTERNS = ("out of memory", "can't allocate memory", "cannot allocate memory")


def weighted_cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """Sum over pixels of ``weights * cross_entropy``; unlabeled (255) pixels give 0.

    Parameters
    ----------
    logits : torch.Tensor
        ``(B, C, H, W)`` float32.
    target : torch.Tensor
        ``(B, H, W)`` int64 class ids, 255 unlabeled.
    weights : torch.Tensor
        ``(B, H, W)`` float32 per-pixel weights (class weight x weight map, 0
        where unlabeled). The caller divides by their sum.
    """
    ce = F.cross_entropy(logits, target, ignore_index=UNLABELED, reduction="none")
    return (ce * weights).sum()


def distillation_loss(
    student: torch.Tensor, teacher: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Mean over pixels of ``T^2 * KL(softmax(teacher / T) || softmax(student / T))``.

    Both are ``(B, C, H, W)`` logits; the ``T^2`` keeps the gradient's size
    independent of the temperature (Hinton et al., 2015).
    """
    t = float(temperature)
    kl = F.kl_div(
        F.log_softmax(student / t, dim=1),
        F.log_softmax(teacher / t, dim=1),
        reduction="none",
        log_target=True,
    )
    return kl.sum(dim=1).mean() * (t * t)


def loss_class_weights(data: TrainingData, weighting: ClassWeighting) -> np.ndarray:
    """The loss weight of each class, from one pass over every label map.

    The pass also refuses labels that are no class now rather than epochs later.

    Raises
    ------
    TrainingError
        A label map holds values that are no class id.
    """
    n = data.labelset.num_classes
    if weighting == ClassWeighting.MEDIAN_FREQUENCY:
        weights = median_frequency_weights(data, n)
    else:
        weights = np.ones(n, np.float32)
        for sample in data.train:
            check_labels(sample, sample.load_labels(), n)
    for sample in data.val:
        check_labels(sample, sample.load_labels(), n)
    return weights


def _forward(network: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The network's forward pass (one place, so tests can inject failures)."""
    return network(x)


def _oom_error(exc: BaseException) -> bool:
    oom = getattr(torch, "OutOfMemoryError", None)
    if oom is not None and isinstance(exc, oom):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(p in text for p in _OOM_PATTERNS)


class TrainingCancelled(Exception):  # noqa: N818 - a request, not a fault
    """Raised out of a :func:`~segstudio.training.loop.fine_tune` generator when its
    ``cancel`` callback said so.

    The step in flight is dropped (gradients cleared, batch-norm statistics
    restored); no checkpoint is written.
    """


def install_cancel_checks(network: nn.Module, cancelled: Callable[[], bool]) -> list[Any]:
    """Check ``cancelled`` before every block's forward and as each block's gradient
    arrives in backward, so a cancel lands within one block's compute, not one step's.

    Blocks are the network's ``nn.Sequential`` containers (the stages of every
    SegStudio architecture); their outputs are never changed in place later, so
    a tensor hook on them is safe. Returns the hook handles (``.remove()`` them).
    """

    def check(*_args: Any) -> None:
        if cancelled():
            raise TrainingCancelled("training cancelled")

    def on_output(_module: nn.Module, _inputs: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor) and output.requires_grad:
            output.register_hook(check)

    handles = []
    for module in network.modules():
        if isinstance(module, nn.Sequential):
            handles.append(module.register_forward_pre_hook(check))
            handles.append(module.register_forward_hook(on_output))
    return handles


def build_optimizer(network: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The recipe's optimiser over the trainable parameters of ``network``.

    Four parameter groups in a fixed order (so checkpoints fit): with and without
    weight decay (none for biases and batch norm), decoder and encoder (whose
    ``lr_scale`` is ``encoder_lr_factor``).

    Raises
    ------
    TrainingError
        Every parameter is frozen.
    """
    # (decay, encoder) -> parameters; the group order is fixed, so checkpoints fit
    buckets: dict[tuple[bool, bool], list[nn.Parameter]] = {
        (True, False): [], (False, False): [], (True, True): [], (False, True): [],
    }  # fmt: skip
    for name, p in network.named_parameters():
        if p.requires_grad:
            buckets[(p.ndim > 1, name.startswith("encoder."))].append(p)
    if not any(buckets.values()):
        raise TrainingError("nothing to train: every parameter is frozen")
    groups = [
        {
            "params": params,
            "weight_decay": cfg.weight_decay if decay else 0.0,
            "lr_scale": cfg.encoder_lr_factor if encoder else 1.0,
        }
        for (decay, encoder), params in buckets.items()
        if params
    ]
    if cfg.optimizer == Optimizer.SGD:
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def lr_factor(cfg: TrainConfig, step: int, progress: float, total: int | None) -> float:
    """The learning rate of ``step`` as a fraction of ``lr``: linear warm-up, then decay.

    ``total`` is the run's steps (None for a time budget, when ``progress``, the
    fraction of the time spent, drives the decay).
    """
    warm = cfg.warmup_steps if total is None else min(cfg.warmup_steps, total // 5)
    if step < warm:
        return (step + 1) / (warm + 1)
    if total is not None:
        progress = (step - warm) / max(1, total - warm)
    progress = min(max(progress, 0.0), 1.0)
    if cfg.schedule == Schedule.POLY:
        decay = (1.0 - progress) ** 0.9
    else:
        decay = 0.5 * (1.0 + math.cos(math.pi * progress))
    return _LR_FLOOR + (1.0 - _LR_FLOOR) * decay


def _rare_pixel(
    labels: np.ndarray, num_classes: int, rng: np.random.Generator
) -> tuple[float, float] | None:
    """Half the time None (a crop anywhere); else a random pixel of a class drawn
    uniformly from the image's classes."""
    if rng.random() < 0.5:
        return None
    present = np.flatnonzero(np.bincount(labels.reshape(-1), minlength=256)[:num_classes])
    if len(present) == 0:
        return None
    ys, xs = np.nonzero(labels == rng.choice(present))
    k = int(rng.integers(len(ys)))
    return float(ys[k]), float(xs[k])


class Stepper:
    """Optimisation steps of one run: batches, gradients, the guards, the update.

    It moves ``network`` to ``device`` (channels-last), freezes the encoder if
    the recipe says so, and builds the optimiser and (``use_scaler``) the fp16
    gradient scaler. It reads and changes the run's :class:`RunState` (``step``
    for messages, ``micro`` and ``crop`` when memory runs out). ``weights`` are
    the classes' loss weights; ``cancel`` is polled inside every step
    (:func:`install_cancel_checks`) until :meth:`release`.
    """

    def __init__(
        self,
        *,
        train: Sequence[Sample],
        config: TrainConfig,
        state: RunState,
        network: nn.Module,
        info: ModelInfo,
        weights: np.ndarray,
        device: torch.device,
        amp: torch.dtype | None,
        use_scaler: bool,
        env: ddp.DistEnv,
        cancel: Callable[[], bool] | None = None,
        teacher: LoadedModel | None = None,
        trained_stats: nn.Module | None,
    ) -> None:
        self.train, self.config, self.state = train, config, state
        #: the part of the network whose batch-norm statistics came from a trained
        #: model (the whole, its encoder under a new head, None for a new network):
        #: ``freeze_bn`` keeps those; fresh ones have nothing worth keeping (frozen
        #: at their empty start, a new decoder barely learnt)
        self.trained_stats = trained_stats
        self._hooks = install_cancel_checks(network, cancel) if cancel is not None else []
        self.device, self.amp, self.env = device, amp, env
        network.to(device).to(memory_format=memory_format(device, amp))
        if config.freeze_encoder:
            for name, p in network.named_parameters():
                if name.startswith("encoder."):
                    p.requires_grad_(False)
        self.network = network
        #: the network, or its DistributedDataParallel wrapper after :meth:`distribute`
        self.model: nn.Module = network
        self.params = [p for p in network.parameters() if p.requires_grad]
        self.optimizer = build_optimizer(network, config)
        self.scaler = torch.amp.GradScaler("cuda") if use_scaler else None
        self.num_classes = len(weights)
        self.class_weights = torch.from_numpy(weights).to(device)
        self.inputs = NetworkPredict(network, info, device, amp).inputs
        self.augment_config = preset(config.augment)
        self.teacher: nn.Module | None = None
        if teacher is not None:
            t_net = copy.deepcopy(teacher.network)  # the caller's model stays as it is
            t_net.to(device).to(memory_format=memory_format(device, amp))
            for p in t_net.parameters():
                p.requires_grad_(False)
            self.teacher = t_net.eval()
            self.teacher_inputs = NetworkPredict(t_net, teacher.info, device, amp).inputs

    def distribute(self) -> None:
        """Under torchrun, wrap the network in DistributedDataParallel (gradients averaged)."""
        if self.env.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(self.network, device_ids=ids)

    def release(self) -> nn.Module:
        """Hand the network back for use after the run: no cancel hooks, on the CPU,
        contiguous, every parameter trainable again, in eval mode."""
        for handle in self._hooks:  # the model outlives the run
            handle.remove()
        self.network.to("cpu").to(memory_format=torch.contiguous_format)
        for p in self.network.parameters():
            p.requires_grad_(True)
        return self.network.eval()

    def train_mode(self) -> None:
        """Put the network in training mode, but a frozen encoder, and with ``freeze_bn``
        the batch norms of :attr:`trained_stats`, in eval."""
        self.network.train()
        if self.config.freeze_encoder and hasattr(self.network, "encoder"):
            self.network.encoder.eval()
        if self.config.freeze_bn and self.trained_stats is not None:
            for m in self.trained_stats.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()

    def _batch(
        self, indices: Sequence[int], epoch: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Load and augment the images of one (per-process) batch."""
        loaded = []
        for idx in indices:
            sample = self.train[idx]
            rgb, labels, weights = sample.load()
            check_labels(sample, labels, self.num_classes)
            loaded.append((int(idx), rgb, labels, weights))
        crop = self.state.crop
        ch = min(crop, max(lab.shape[0] for _, _, lab, _ in loaded))
        cw = min(crop, max(lab.shape[1] for _, _, lab, _ in loaded))
        any_weights = any(w is not None for *_, w in loaded)
        rgbs, labs, wts = [], [], []
        for idx, rgb, labels, weights in loaded:
            rng = np.random.default_rng([self.config.seed, epoch, idx, self.env.rank])
            if any_weights and weights is None:
                weights = np.ones(labels.shape, np.float32)
            focus = (
                _rare_pixel(labels, self.num_classes, rng) if self.config.balanced_crops else None
            )
            a_rgb, a_lab, a_w = augment(
                rgb, labels, weights, rng, (ch, cw), self.augment_config, focus=focus
            )
            rgbs.append(a_rgb)
            labs.append(a_lab)
            wts.append(a_w)
        stacked_w = np.stack(wts) if any_weights else None
        return np.stack(rgbs), np.stack(labs), stacked_w

    def _snapshot_buffers(self) -> dict[str, torch.Tensor]:
        return {k: b.detach().clone() for k, b in self.network.named_buffers()}

    def _restore_buffers(self, saved: Mapping[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for k, b in self.network.named_buffers():
                b.copy_(saved[k])

    def _forward_backward(
        self, rgb: np.ndarray, labels: np.ndarray, weights: np.ndarray | None
    ) -> tuple[float, float]:
        """Accumulate the gradients of one batch; return (sum of weighted loss, sum of weights)."""
        dev = self.device
        target = torch.from_numpy(labels).to(dev).long()
        valid = target != UNLABELED
        w = self.class_weights[target.clamp(max=self.num_classes - 1)] * valid
        if weights is not None:
            w = w * torch.from_numpy(weights).to(dev)
        total = float(w.sum())
        # Under DDP every rank scales by the weight of the whole step (all ranks), so the
        # averaged gradient is sum(w * ce) / sum(w) as in one process, and a rank whose
        # crops hold no labelled pixel still runs forward and backward (zero loss), so
        # the collectives of all ranks stay in step.
        scale_total, world = total, 1
        if self.env.distributed:
            both = torch.tensor([total], dtype=torch.float64, device=dev)
            ddp.all_reduce_sum(both, self.env)
            scale_total, world = float(both.item()), self.env.world_size
        if scale_total <= 0 and self.teacher is None:
            return 0.0, 0.0  # nothing labelled anywhere: every rank skips alike
        # with a teacher, crops without a labelled pixel still learn its outputs
        ce_scale = world / scale_total if scale_total > 0 else 0.0
        loss_sum = 0.0
        n = len(rgb)
        starts = list(range(0, n, self.state.micro))
        for k, s in enumerate(starts):
            sl = slice(s, s + self.state.micro)
            sync = k == len(starts) - 1
            ctx = (
                self.model.no_sync()
                if (self.env.distributed and not sync)
                else contextlib.nullcontext()
            )
            with ctx:
                with autocast(dev, self.amp):
                    logits = _forward(self.model, self.inputs(rgb[sl]))
                part = weighted_cross_entropy(logits.float(), target[sl], w[sl])
                loss = part * ce_scale
                if self.teacher is not None:
                    loss = (1.0 - self.config.distill_weight) * loss + self._distill(
                        logits, rgb[sl], len(rgb[sl]) / n
                    )
                (self.scaler.scale(loss) if self.scaler is not None else loss).backward()
            loss_sum += float(part.detach())
        return loss_sum, total

    def _distill(self, logits: torch.Tensor, rgb: np.ndarray, share: float) -> torch.Tensor:
        """The distillation term of a micro-batch holding ``share`` of the batch."""
        assert self.teacher is not None
        with torch.no_grad(), autocast(self.device, self.amp):
            target = self.teacher(self.teacher_inputs(rgb))
        kd = distillation_loss(logits.float(), target.float(), self.config.distill_temperature)
        return kd * (self.config.distill_weight * share)

    def step(
        self, indices: Sequence[int], epoch: int, lr: float
    ) -> tuple[float | None, str | None, list[str]]:
        """One optimisation step at learning rate ``lr`` on the training images ``indices``.

        Returns
        -------
        tuple
            ``(loss or None when nothing was labelled, why training must stop or
            None, notices for the person)``.

        Raises
        ------
        TrainingCancelled
            The cancel check fired inside the step (which is dropped).
        TrainingError
            Out of memory even with one image and the smallest crop.
        """
        notes: list[str] = []
        saved = self._snapshot_buffers()
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        while True:
            rgb, labels, weights = self._batch(indices, epoch)
            try:
                loss_sum, total = self._forward_backward(rgb, labels, weights)
                break
            except TrainingCancelled:
                self.optimizer.zero_grad(set_to_none=True)
                self._restore_buffers(saved)
                raise
            except RuntimeError as exc:
                if not _oom_error(exc):
                    raise
                self.optimizer.zero_grad(set_to_none=True)
                self._restore_buffers(saved)
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                notes.append(self._shrink(exc))
        stats = torch.tensor(
            [loss_sum, total, 0.0 if math.isfinite(loss_sum) else 1.0], dtype=torch.float64
        )
        if self.env.distributed:
            stats = stats.to(self.device)
        ddp.all_reduce_sum(stats, self.env)
        loss_sum, total, bad = (float(v) for v in stats.cpu())
        if total <= 0 and self.teacher is None:  # nothing labelled in any crop of this step
            self.optimizer.zero_grad(set_to_none=True)
            return None, None, notes
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        norm = float(torch.nn.utils.clip_grad_norm_(self.params, MAX_GRAD_NORM))
        loss = loss_sum / total if total > 0 else 0.0  # (distillation alone: no labels)
        if bad or not math.isfinite(loss) or (self.scaler is None and not math.isfinite(norm)):
            self.optimizer.zero_grad(set_to_none=True)
            self._restore_buffers(saved)
            what = "loss" if bad or not math.isfinite(loss) else "gradient"
            value = "NaN" if math.isnan(loss if what == "loss" else norm) else "infinite"
            reason = (
                f"the {what} became {value} at step {self.state.step + 1}; training stopped "
                f"and keeps the weights of step {self.state.step}"
            )
            return None, reason, notes
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss, None, notes

    def _shrink(self, exc: BaseException) -> str:
        st = self.state
        if st.micro > 1:
            st.micro = max(1, st.micro // 2)
            return (
                f"out of memory at step {st.step + 1}: the batch of {self.config.batch_size} now "
                f"runs in parts of {st.micro} (gradients accumulated); retrying"
            )
        if st.crop > MIN_CROP:
            st.crop = max(MIN_CROP, st.crop // 2)
            return (
                f"out of memory at step {st.step + 1} with one image: crop now {st.crop}; retrying"
            )
        raise TrainingError(
            f"out of memory even with one image and a {st.crop}-pixel crop ({exc}); "
            "use a lighter model or another device"
        ) from exc
