"""The fine-tune loop: a generator that yields progress after every optimisation step.

:func:`fine_tune` trains a network on a :class:`~segstudio.training.data.TrainingData`
and yields a :class:`TrainProgress` after every step, every validation image,
every checkpoint and every notice; its return value (``StopIteration.value``)
is a :class:`TrainResult`. A caller stops it at once by closing the generator
or simply by not asking for the next item: all work happens between two
yields, no thread is started, and every file is written atomically, so
nothing half-done is left behind.

What it does
------------
- **Model**: ``init`` (a loaded model, copied, never changed) or ``arch`` (a
  new network for the data's classes). When ``init``'s classes differ from the
  data's, its encoder weights (every tensor named ``encoder.*``) are kept and
  the decoder and classifier start afresh for the new classes.
- **Loss**: cross-entropy, unlabeled pixels (255) ignored, each pixel weighted
  by its class weight (median frequency balancing) times its weight-map value
  (corrected pixels count more); ``sum(weight * loss) / sum(weight)``.
- **Speed**: channels-last activations; on CPUs with bf16 hardware, forward
  and loss under ``torch.autocast("cpu", bfloat16)`` with float32 master
  weights; on CUDA, bf16 autocast (or fp16 with a gradient scaler).
- **Reproducible**: the network's initialisation, the epoch order and every
  augmentation are seeded by ``config.seed``; with fp32 on the CPU two runs
  give the same losses.
- **Validation**: every ``val_every_epochs`` epochs, on the full validation
  images in eval mode; the metrics are those of
  :class:`~segstudio.core.metrics.ConfusionMatrix`.
- **The model returned is the final one**, not the best on validation: with
  the few validation images of a labelling project, picking the best of many
  evaluations would flatter it. ``before``, ``after`` and ``improved`` say
  plainly whether the final model scores better than the starting one, and
  the caller decides whether to use it.

Safety
------
- **Checkpoints** (``checkpoint_dir``): every ``checkpoint_every_s`` seconds
  and at the end, one ``checkpoint.safetensors`` written atomically: weights,
  optimizer tensors and the torch RNG as tensors, everything else (step,
  config, data fingerprint, optimizer settings, OOM adjustments, the
  ``before`` metrics) as JSON in the file's header. Never pickle.
  ``resume=True`` continues from it and ends at the same step count; a
  checkpoint of another recipe or other data is refused with a
  :class:`TrainingError` that names the differences.
- **NaN or infinite loss** (or gradient): the step is not applied, batch-norm
  statistics are restored, training stops with ``stopped_early`` set and a
  ``"message"`` progress; the weights returned are those of the last good step.
- **Out of memory**: the step is retried with the batch split into
  micro-batches of half the size (gradients accumulated, so the step means
  the same), down to one image; then with half the crop, down to 64 pixels.
- **Cancel**: between yields nothing is pending; closing the generator (or
  dropping it) leaves the last periodic checkpoint, from which a run resumes.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn
from torch.nn import functional as F

from segstudio.core.atomic import atomic_path
from segstudio.core.errors import SegStudioError, TrainingError
from segstudio.core.labelset import UNLABELED, LabelSet
from segstudio.core.metrics import ConfusionMatrix
from segstudio.model.arch import ArchSpec, resolve_spec
from segstudio.model.files import (
    LoadedModel,
    ModelInfo,
    Normalization,
    default_provenance,
    new_model,
)
from segstudio.model.predictor import (
    Predictor,
    cpu_has_native_bf16,
    select_device,
)
from segstudio.training import ddp
from segstudio.training.augment import augment
from segstudio.training.data import (
    Sample,
    TrainingData,
    check_labels,
    median_frequency_weights,
)
from segstudio.training.recipes import FEW_SHOT

__all__ = [
    "CHECKPOINT_NAME",
    "DEFAULT_CONFIG",
    "FEW_SHOT",
    "TrainConfig",
    "TrainProgress",
    "TrainResult",
    "checkpoint_info",
    "evaluate",
    "fine_tune",
    "weighted_cross_entropy",
]

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.safetensors"
_CHECKPOINT_FORMAT = "segstudio.checkpoint"
_CHECKPOINT_VERSION = 1
_META_KEY = "segstudio.checkpoint"
#: Config fields a resumed run may change: they do not change what is learnt.
_RESUMABLE_CHANGES = frozenset({"device", "checkpoint_every_s", "verdict_pixels"})
#: Images whose longer side is above this are validated in tiles (by the Predictor).
_FULL_IMAGE_MAX = 1024
#: The crop is never halved below this on out-of-memory errors.
MIN_CROP = 64
#: Gradients are clipped to this global norm, a guard against rare spikes.
MAX_GRAD_NORM = 10.0
#: The learning rate decays to this fraction of ``lr``, never to zero.
_LR_FLOOR = 0.01
#: Names kept in a model's provenance (the counts are always exact).
_MAX_NAMES = 1000
_OOM_PATTERNS = ("out of memory", "can't allocate memory", "cannot allocate memory")

_OPTIMIZERS = ("adamw", "sgd")
_SCHEDULES = ("cosine", "poly")
_WEIGHTINGS = ("median_frequency", "none")
_PRECISIONS = ("auto", "fp32", "bf16")
KINDS = ("step", "validation", "checkpoint", "message")


# --------------------------------------------------------------------------- values


def _is_int(v: object) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


def _is_num(v: object) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)


@dataclass(frozen=True)
class TrainConfig:
    """A training recipe.

    Attributes
    ----------
    epochs, minutes : int or float, optional
        How long: a number of epochs (passes over the training images) or a
        wall-clock budget in minutes. At most one may be set; with neither,
        20 epochs. A time budget ends after the step that crosses it (the
        final validation comes on top).
    batch_size : int
        Images per optimisation step (per process under torchrun).
    crop : int
        Side of the random training crops, pixels (smaller images are not
        padded beyond their own size).
    lr, weight_decay : float
        Peak learning rate; weight decay (not applied to biases and batch norm).
    optimizer : str
        ``"adamw"`` or ``"sgd"`` (momentum 0.9).
    schedule : str
        ``"cosine"`` or ``"poly"`` (power 0.9) decay to 1% of ``lr``, after a
        linear warm-up of ``warmup_steps`` steps (at most a fifth of the run).
    freeze_encoder : bool
        Train only the decoder and classifier; the encoder's batch norms stay
        in eval mode.
    class_weighting : str
        ``"median_frequency"`` (from the training labels) or ``"none"``.
    corrected_weight : float
        Loss weight of pixels a person corrected. The data carries the weight
        maps: pass this to :func:`~segstudio.training.data.from_project` /
        :func:`~segstudio.training.data.load_source` (the CLI does);
        :func:`fine_tune` records it in the recipe and uses the maps as given.
    precision : str
        ``"auto"`` (bf16 autocast on CPUs with bf16 hardware and on CUDA, else
        fp32), ``"fp32"`` or ``"bf16"``.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.
    seed : int
        Seeds initialisation, data order and augmentation.
    checkpoint_every_s : float
        Seconds between checkpoints (when a checkpoint folder is given).
    val_every_epochs : int
        Validate after every this many epochs.
    encoder_lr_factor : float
        The encoder's learning rate is ``lr`` times this (a trained encoder
        needs small steps; 1.0 trains all layers alike).
    freeze_bn : bool
        Keep every batch norm in eval mode: its statistics stay those of the
        starting model (small batches of a few images would overwrite them
        with noise), its scale and shift still learn.
    keep_best : bool
        Return the weights that scored best on validation (the starting model
        included when its head is kept) instead of the final ones: a run that
        only makes things worse returns the model it started from.
    patience : int
        Stop after this many validations in a row without a better score (0:
        never stop early).
    verdict_pixels : int
        Fewer labelled validation pixels than this (or fewer than two images)
        and "better" would be a coin toss: the result gives no verdict and says so.
    balanced_crops : bool
        Centre every other crop near a pixel of a class drawn uniformly from the
        classes of the image, so thin, rare classes (poles, signs) are seen as
        often as the road.

    Raises
    ------
    TrainingError
        A value is out of range or of the wrong type.
    """

    epochs: int | None = None
    minutes: float | None = None
    batch_size: int = 4
    crop: int = 320
    lr: float = 1e-3
    weight_decay: float = 1e-4
    optimizer: str = "adamw"
    schedule: str = "cosine"
    warmup_steps: int = 20
    freeze_encoder: bool = False
    class_weighting: str = "median_frequency"
    corrected_weight: float = 2.0
    precision: str = "auto"
    device: str = "auto"
    seed: int = 0
    checkpoint_every_s: float = 60.0
    val_every_epochs: int = 1
    encoder_lr_factor: float = 1.0
    freeze_bn: bool = False
    keep_best: bool = False
    patience: int = 0
    verdict_pixels: int = 100_000
    balanced_crops: bool = False

    def __post_init__(self) -> None:
        if self.epochs is not None and self.minutes is not None:
            raise TrainingError("give either epochs or minutes, not both")
        if self.epochs is None and self.minutes is None:
            object.__setattr__(self, "epochs", 20)

        def positive(v: object, top: float = math.inf) -> bool:
            return _is_num(v) and math.isfinite(v) and 0 < v <= top  # type: ignore[arg-type, operator]

        def count(v: object, low: int, high: float = math.inf) -> bool:
            return _is_int(v) and low <= v <= high  # type: ignore[operator]

        rules: list[tuple[str, bool, str]] = [
            ("epochs", self.epochs is None or count(self.epochs, 1), ">= 1"),
            ("minutes", self.minutes is None or positive(self.minutes), "> 0"),
            ("batch_size", count(self.batch_size, 1, 4096), "1..4096"),
            ("crop", count(self.crop, MIN_CROP // 2, 8192), f"{MIN_CROP // 2}..8192"),
            ("lr", positive(self.lr, 10.0), "in (0, 10]"),
            ("weight_decay", self.weight_decay == 0 or positive(self.weight_decay, 1.0), "0..1"),
            ("optimizer", self.optimizer in _OPTIMIZERS, " or ".join(_OPTIMIZERS)),
            ("schedule", self.schedule in _SCHEDULES, " or ".join(_SCHEDULES)),
            ("warmup_steps", count(self.warmup_steps, 0), ">= 0"),
            ("freeze_encoder", isinstance(self.freeze_encoder, bool), "true or false"),
            ("class_weighting", self.class_weighting in _WEIGHTINGS, " or ".join(_WEIGHTINGS)),
            ("corrected_weight", positive(self.corrected_weight, 100.0), "in (0, 100]"),
            ("precision", self.precision in _PRECISIONS, " or ".join(_PRECISIONS)),
            ("device", isinstance(self.device, str) and bool(self.device.strip()), "a device"),
            ("seed", count(self.seed, 0, 2**63 - 1), ">= 0"),
            ("checkpoint_every_s", positive(self.checkpoint_every_s), "> 0"),
            ("val_every_epochs", count(self.val_every_epochs, 1), ">= 1"),
            ("encoder_lr_factor", positive(self.encoder_lr_factor, 1.0), "in (0, 1]"),
            ("freeze_bn", isinstance(self.freeze_bn, bool), "true or false"),
            ("keep_best", isinstance(self.keep_best, bool), "true or false"),
            ("patience", count(self.patience, 0), ">= 0"),
            ("verdict_pixels", count(self.verdict_pixels, 0), ">= 0"),
            ("balanced_crops", isinstance(self.balanced_crops, bool), "true or false"),
        ]
        problems = [
            f"{name} is {getattr(self, name)!r}, must be {rule}"
            for name, ok, rule in rules
            if not ok
        ]
        if problems:
            raise TrainingError("bad training recipe: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """The recipe as JSON-safe values (every field, ``epochs`` filled in)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Build a recipe from :meth:`to_dict`'s output; missing fields take their defaults.

        Raises
        ------
        TrainingError
            Not a mapping, unknown fields, or bad values.
        """
        if not isinstance(data, Mapping):
            raise TrainingError(f"a training recipe must be an object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TrainingError(f"unknown training setting(s): {', '.join(map(str, unknown))}")
        return cls(**dict(data))


DEFAULT_CONFIG = TrainConfig()


@dataclass(frozen=True)
class TrainProgress:
    """One report of a running :func:`fine_tune`.

    Attributes
    ----------
    kind : str
        ``"step"`` (an optimisation step finished), ``"validation"`` (with
        ``metrics``: a validation finished; without: one more validation image
        done, ``message`` says which), ``"checkpoint"`` (written, ``message``
        holds the path) or ``"message"`` (a notice for the person, in ``message``).
    step : int
        Optimisation steps done so far.
    total_steps : int or None
        Steps of the whole run; None for a time budget.
    epoch : int
        The epoch (1-based) the last step belongs to; 0 before the first.
    epoch_float : float
        Epochs done, fractional (2.5 = half-way through the third).
    loss : float or None
        The step's weighted cross-entropy (averaged over processes).
    lr : float or None
        The learning rate of the step.
    images_per_s : float or None
        Training throughput, smoothed (all processes).
    eta_s : float or None
        Estimated seconds left (validation not included).
    metrics : dict or None
        A finished validation: ``SegmentationMetrics.to_dict()`` (``mean_iou``,
        ``per_class_iou``, ...) plus ``images`` and ``class_names``.
    message : str
        Text for the person.
    """

    kind: str
    step: int = 0
    total_steps: int | None = None
    epoch: int = 0
    epoch_float: float = 0.0
    loss: float | None = None
    lr: float | None = None
    images_per_s: float | None = None
    eta_s: float | None = None
    metrics: dict[str, Any] | None = None
    message: str = ""


@dataclass(frozen=True)
class TrainResult:
    """What a finished (or early-stopped) :func:`fine_tune` returns.

    Attributes
    ----------
    model : LoadedModel
        The final network, in eval mode, on the CPU, in float32. Its
        ``info.provenance`` holds the lineage (parent model, the images it was
        trained and validated on, the recipe, the source, duration and steps)
        and ``info.metrics`` the final validation metrics.
    before : dict or None
        Validation metrics of the starting model; None when training started
        from scratch or with a new head, or without validation images.
    after : dict or None
        Validation metrics of the returned model; None without validation images.
    improved : bool or None
        ``after["mean_iou"] > before["mean_iou"]``; None when either is missing.
    stopped_early : str or None
        Why training stopped before its end (a NaN or infinite loss), else None.
    verdict : str
        One sentence for the person: better or not, on how many validation
        images and pixels, which weights were kept, or why no verdict is given
        (``improved`` is then None).
    """

    model: LoadedModel
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    improved: bool | None
    stopped_early: str | None = None
    verdict: str = ""


# --------------------------------------------------------------------------- loss


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


def _forward(network: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The network's forward pass (one place, so tests can inject failures)."""
    return network(x)


def _oom_error(exc: BaseException) -> bool:
    oom = getattr(torch, "OutOfMemoryError", None)
    if oom is not None and isinstance(exc, oom):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(p in text for p in _OOM_PATTERNS)


# --------------------------------------------------------------------------- helpers


def _resolve_amp(device: torch.device, precision: str) -> tuple[torch.dtype | None, bool]:
    """The autocast dtype (None: fp32) and whether a gradient scaler is needed."""
    if precision == "fp32" or device.type == "mps":
        return None, False
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return torch.bfloat16, False
        if precision == "bf16":
            raise TrainingError("this GPU has no bf16; use precision auto or fp32")
        return torch.float16, True
    if precision == "bf16" or cpu_has_native_bf16():
        return torch.bfloat16, False
    return None, False


def _amp_name(dtype: torch.dtype | None) -> str:
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def _device_for(config_device: str, env: ddp.DistEnv) -> torch.device:
    try:
        device = select_device(config_device)
    except SegStudioError as exc:
        raise TrainingError(str(exc)) from exc
    if device.type == "cuda" and env.distributed and device.index is None:
        device = torch.device("cuda", env.local_rank % torch.cuda.device_count())
    return device


def _autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def _fingerprint(data: TrainingData) -> str:
    doc = {
        "train": [s.name for s in data.train],
        "val": [s.name for s in data.val],
        "classes": data.labelset.to_dict()["classes"],
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _metrics_dict(cm: ConfusionMatrix, labelset: LabelSet, images: int) -> dict[str, Any]:
    out = cm.compute().to_dict()
    out["images"] = images
    out["class_names"] = list(labelset.names)
    return out


def _strip_names(provenance: Mapping[str, Any]) -> dict[str, Any]:
    """A parent's provenance without its image-name lists, so lineage stays small."""
    return {k: v for k, v in provenance.items() if k not in ("train_names", "val_names")}


class _Evaluator:
    """Full-image predictions of a network for validation (no copies for small images)."""

    def __init__(
        self,
        network: nn.Module,
        info: ModelInfo,
        device: torch.device,
        amp: torch.dtype | None,
    ) -> None:
        self.network = network
        self.info = info
        self.device = device
        self.amp = amp
        norm = info.normalization
        mean = torch.tensor(norm.mean, dtype=torch.float32, device=device)
        std = torch.tensor(norm.std, dtype=torch.float32, device=device)
        self.scale = (1.0 / (255.0 * std)).view(1, -1, 1, 1)
        self.shift = (-mean / std).view(1, -1, 1, 1)
        self._tiler: Predictor | None = None

    def inputs(self, rgb: np.ndarray) -> torch.Tensor:
        """``(B, 3, H, W)`` normalised float32, channels-last, from ``(B, H, W, 3)`` uint8."""
        x = torch.from_numpy(np.ascontiguousarray(rgb)).to(self.device, non_blocking=True)
        x = x.permute(0, 3, 1, 2).float() * self.scale + self.shift
        return x.contiguous(memory_format=torch.channels_last)

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        """The class map of one image; the network must be in eval mode."""
        if max(rgb.shape[:2]) > _FULL_IMAGE_MAX:
            if self._tiler is None:
                model = LoadedModel(self.info, self.network)
                precision = "fp32" if self.amp is None else _amp_name(self.amp)
                self._tiler = Predictor(model, device=str(self.device), precision=precision)
            return self._tiler.predict(rgb).labels
        with torch.inference_mode(), _autocast(self.device, self.amp):
            logits = _forward(self.network, self.inputs(rgb[None]))
        return logits.argmax(dim=1)[0].to(torch.uint8).cpu().numpy()

    def run(self, samples: Sequence[Sample]) -> Iterator[tuple[int, ConfusionMatrix | None]]:
        """Yield ``(images done, None)`` per image, then ``(n, confusion matrix)``."""
        n = self.info.labelset.num_classes
        cm = ConfusionMatrix(n)
        self._tiler = None
        for i, sample in enumerate(samples):
            rgb, labels, _ = sample.load()
            check_labels(sample, labels, n)
            cm.update(self.predict(rgb), labels)
            yield i + 1, None
        self._tiler = None
        yield len(samples), cm


def evaluate(
    model: LoadedModel, samples: Iterable[Sample], *, device: str = "auto"
) -> dict[str, Any]:
    """Score a model on labelled samples (full images, eval mode).

    Uses the same forward pass and precision as the validation inside
    :func:`fine_tune` (bf16 autocast where the hardware has it), so ``before``
    and ``after`` of a run and this function agree.

    Returns
    -------
    dict
        ``SegmentationMetrics.to_dict()`` plus ``images`` and ``class_names``.
    """
    samples = tuple(samples)
    dev = _device_for(device, ddp.SINGLE)
    amp, _ = _resolve_amp(dev, "auto")
    network = copy.deepcopy(model.network).to(dev).to(memory_format=torch.channels_last).eval()
    evaluator = _Evaluator(network, model.info, dev, amp)
    cm: ConfusionMatrix | None = None
    for _, cm in evaluator.run(samples):  # noqa: B007 - the last item holds the matrix
        pass
    assert cm is not None
    return _metrics_dict(cm, model.info.labelset, len(samples))


# --------------------------------------------------------------------------- checkpoints


def _read_checkpoint(folder: Path) -> tuple[dict[str, Any], Path]:
    path = Path(folder) / CHECKPOINT_NAME
    if not path.is_file():
        raise TrainingError(f"{folder}: no checkpoint ({CHECKPOINT_NAME}) to resume from")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(_META_KEY)
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise TrainingError(f"{path}: not a readable checkpoint ({exc})") from exc
    if raw is None:
        raise TrainingError(f"{path}: not a SegStudio training checkpoint")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise TrainingError(f"{path}: checkpoint metadata is not valid JSON ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != _CHECKPOINT_FORMAT:
        raise TrainingError(f"{path}: not a SegStudio training checkpoint")
    if meta.get("version", 0) > _CHECKPOINT_VERSION:
        raise TrainingError(f"{path}: written by a newer SegStudio; update SegStudio")
    return meta, path


def checkpoint_info(folder: Path) -> dict[str, Any] | None:
    """What the checkpoint in ``folder`` holds (step, total_steps, config, ...), or None.

    For a window to offer "resume": None when there is no readable checkpoint.
    The dictionary has ``step``, ``total_steps``, ``epoch_float``, ``elapsed_s``,
    ``config`` (a :meth:`TrainConfig.to_dict`), ``arch``, ``saved_at`` and
    ``fingerprint``.
    """
    try:
        meta, _ = _read_checkpoint(folder)
    except TrainingError:
        return None
    keys = ("step", "total_steps", "epoch_float", "elapsed_s", "config", "arch", "saved_at")
    info = {k: meta.get(k) for k in keys}
    info["fingerprint"] = meta.get("fingerprint")
    return info


# --------------------------------------------------------------------------- the run


@dataclass
class _State:
    """What changes as training goes on (and goes into a checkpoint)."""

    step: int = 0
    elapsed_s: float = 0.0
    micro: int = 1
    crop: int = 320
    val_step: int = -1
    last_metrics: dict[str, Any] | None = None
    before: dict[str, Any] | None = None
    history: list[float] = field(default_factory=list)
    #: keep_best: the best validation so far (step 0 = the starting model)
    best_step: int | None = None
    best_metrics: dict[str, Any] | None = None
    stale_validations: int = 0


class TrainingCancelled(Exception):  # noqa: N818 - a request, not a fault
    """Raised out of a :func:`fine_tune` generator when its ``cancel`` callback said so.

    The step in flight is dropped (gradients cleared, batch-norm statistics
    restored); no checkpoint is written.
    """


def _install_cancel_checks(network: nn.Module, cancelled: Callable[[], bool]) -> list[Any]:
    """Check ``cancelled`` before every block's forward and as each block's gradient
    arrives in backward, so a cancel lands within one block's compute, not one step's.

    Blocks are the network's ``nn.Sequential`` containers (the stages of every
    SegStudio architecture); their outputs are never changed in place later, so
    a tensor hook on them is safe.
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
    ) -> None:
        self.cancel = cancel
        self.data = data
        self.init = init
        self.arch = resolve_spec(init.info.arch if init is not None else arch)  # type: ignore[arg-type]
        self.config = config
        self.checkpoint_dir = checkpoint_dir
        self.resume = resume
        self.num_classes = data.labelset.num_classes
        self.state = _State(micro=config.batch_size, crop=config.crop)

    # ----------------------------------------------------------------- set-up

    def _network(self) -> tuple[nn.Module, str]:
        """A fresh copy of the network to train, and how its head came about."""
        cfg, data = self.config, self.data
        if self.init is None:
            model = new_model(self.arch, data.labelset, seed=cfg.seed)
            return model.network, "new"
        if self.init.info.labelset.same_names(data.labelset):  # recoloured: same outputs
            return copy.deepcopy(self.init.network), "kept"
        fresh = new_model(self.arch, data.labelset, seed=cfg.seed).network
        encoder = {
            k: v.detach().clone()
            for k, v in self.init.network.state_dict().items()
            if k.startswith("encoder.")
        }
        missing, unexpected = fresh.load_state_dict(encoder, strict=False)
        if unexpected or any(k.startswith("encoder.") for k in missing):
            raise TrainingError("the starting model's encoder does not fit its architecture")
        return fresh, "new_head"

    def _optimizer(self, network: nn.Module) -> torch.optim.Optimizer:
        cfg = self.config
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
        if cfg.optimizer == "sgd":
            return torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9)
        return torch.optim.AdamW(groups, lr=cfg.lr)

    def _lr_factor(self, step: int, progress: float) -> float:
        cfg = self.config
        total = self.total_steps
        warm = cfg.warmup_steps if total is None else min(cfg.warmup_steps, total // 5)
        if step < warm:
            return (step + 1) / (warm + 1)
        if total is not None:
            progress = (step - warm) / max(1, total - warm)
        progress = min(max(progress, 0.0), 1.0)
        if cfg.schedule == "poly":
            decay = (1.0 - progress) ** 0.9
        else:
            decay = 0.5 * (1.0 + math.cos(math.pi * progress))
        return _LR_FLOOR + (1.0 - _LR_FLOOR) * decay

    def _set_train_mode(self) -> None:
        self.network.train()
        if self.config.freeze_encoder and hasattr(self.network, "encoder"):
            self.network.encoder.eval()
        if self.config.freeze_bn:
            for m in self.network.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()

    # ------------------------------------------------------------------- data

    def _batch(
        self, indices: Sequence[int], epoch: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Load and augment the images of one (per-process) batch."""
        loaded = []
        for idx in indices:
            sample = self.data.train[idx]
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
            a_rgb, a_lab, a_w = augment(rgb, labels, weights, rng, (ch, cw), focus=focus)
            rgbs.append(a_rgb)
            labs.append(a_lab)
            wts.append(a_w)
        stacked_w = np.stack(wts) if any_weights else None
        return np.stack(rgbs), np.stack(labs), stacked_w

    # ------------------------------------------------------------------- step

    def _snapshot_buffers(self) -> dict[str, torch.Tensor]:
        return {k: b.detach().clone() for k, b in self.network.named_buffers()}

    def _restore_buffers(self, saved: Mapping[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for k, b in self.network.named_buffers():
                b.copy_(saved[k])

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
        if scale_total <= 0:  # nothing labelled anywhere: every rank skips alike
            return 0.0, 0.0
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
                with _autocast(dev, self.amp):
                    logits = _forward(self.model, self.evaluator.inputs(rgb[sl]))
                part = weighted_cross_entropy(logits.float(), target[sl], w[sl])
                loss = part * (world / scale_total)
                (self.scaler.scale(loss) if self.scaler is not None else loss).backward()
            loss_sum += float(part.detach())
        return loss_sum, total

    def _step(
        self, indices: Sequence[int], epoch: int
    ) -> tuple[float | None, str | None, list[str]]:
        """One optimisation step: (loss, reason it must stop or None, notices)."""
        notes: list[str] = []
        saved = self._snapshot_buffers()
        lr = self.config.lr * self._lr_factor(self.state.step, self._progress())
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
        if total <= 0:  # nothing labelled in any crop of this step
            self.optimizer.zero_grad(set_to_none=True)
            return None, None, notes
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        norm = float(torch.nn.utils.clip_grad_norm_(self.params, MAX_GRAD_NORM))
        loss = loss_sum / total
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

    # --------------------------------------------------------------- progress

    def _elapsed(self) -> float:
        return self.state.elapsed_s + (time.monotonic() - self.t0)

    def _progress(self) -> float:
        if self.config.minutes is not None:
            return self._elapsed() / (self.config.minutes * 60.0)
        return self.state.step / max(1, self.total_steps or 1)

    def _report(self, kind: str, **kw: Any) -> TrainProgress:
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
        return self._report("message", message=text)

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
        cm = None
        try:
            for done, cm in self.evaluator.run(self.data.val):
                if cm is None:
                    yield self._report("validation", message=f"{label}: validating {done}/{n}")
        finally:
            self._set_train_mode()
        assert cm is not None
        metrics = _metrics_dict(cm, self.data.labelset, n)
        yield self._report(
            "validation",
            metrics=metrics,
            message=f"{label}: mean IoU {metrics['mean_iou']:.4f} on {n} validation image(s)",
        )
        return metrics

    # ------------------------------------------------------------ checkpoints

    def _checkpoint_meta(self) -> dict[str, Any]:
        st = self.state
        opt = self.optimizer.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for pid, entry in opt["state"].items():
            for k, v in entry.items():
                if not torch.is_tensor(v):
                    scalars.setdefault(str(pid), {})[k] = v
        return {
            "format": _CHECKPOINT_FORMAT,
            "version": _CHECKPOINT_VERSION,
            "saved_at": time.time(),
            "step": st.step,
            "total_steps": self.total_steps,
            "steps_per_epoch": self.steps_per_epoch,
            "epoch_float": st.step / self.steps_per_epoch,
            "elapsed_s": self._elapsed(),
            "micro": st.micro,
            "crop": st.crop,
            "val_step": st.val_step,
            "last_metrics": st.last_metrics,
            "before": st.before,
            "history": st.history[-1000:],
            "best_step": st.best_step,
            "best_metrics": st.best_metrics,
            "stale_validations": st.stale_validations,
            "config": self.config.to_dict(),
            "fingerprint": _fingerprint(self.data),
            "train_images": len(self.data.train),
            "val_images": len(self.data.val),
            "world_size": self.env.world_size,
            "arch": self.arch.to_dict(),
            "labelset": self.data.labelset.to_dict(),
            "head": self.head,
            "init_path": None
            if self.init is None or self.init.path is None
            else str(self.init.path),
            "optimizer": {"param_groups": _json_safe(opt["param_groups"]), "scalars": scalars},
            "scaler": None if self.scaler is None else _json_safe(self.scaler.state_dict()),
        }

    def _save_checkpoint(self) -> Path | None:
        if self.checkpoint_dir is None or not self.env.is_main:
            return None
        tensors: dict[str, torch.Tensor] = {}
        for k, v in self.network.state_dict().items():
            tensors[f"model.{k}"] = v.detach().to("cpu").contiguous()
        for pid, entry in self.optimizer.state_dict()["state"].items():
            for k, v in entry.items():
                if torch.is_tensor(v):
                    tensors[f"optim.{pid}.{k}"] = v.detach().to("cpu").contiguous()
        for k, v in (self.best_state or {}).items():
            tensors[f"best.{k}"] = v.contiguous()
        tensors["rng.torch"] = torch.get_rng_state()
        meta = {_META_KEY: json.dumps(self._checkpoint_meta(), allow_nan=False)}
        path = self.checkpoint_dir / CHECKPOINT_NAME
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=meta)
        self.last_checkpoint = time.monotonic()
        return path

    def _load_checkpoint(self) -> None:
        assert self.checkpoint_dir is not None
        meta, path = _read_checkpoint(self.checkpoint_dir)
        self._check_same_run(meta, path)
        model_state: dict[str, torch.Tensor] = {}
        optim_tensors: dict[int, dict[str, torch.Tensor]] = {}
        best_state: dict[str, torch.Tensor] = {}
        rng = None
        try:
            with safe_open(str(path), framework="pt", device="cpu") as f:
                for key in f.keys():  # noqa: SIM118 - safe_open is not a Mapping
                    if key.startswith("model."):
                        model_state[key[len("model.") :]] = f.get_tensor(key)
                    elif key.startswith("optim."):
                        _, pid, name = key.split(".", 2)
                        optim_tensors.setdefault(int(pid), {})[name] = f.get_tensor(key)
                    elif key.startswith("best."):
                        best_state[key[len("best.") :]] = f.get_tensor(key)
                    elif key == "rng.torch":
                        rng = f.get_tensor(key)
        except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
            raise TrainingError(f"{path}: checkpoint weights cannot be read ({exc})") from exc
        try:
            self.network.load_state_dict(model_state, strict=True)
        except RuntimeError as exc:
            raise TrainingError(f"{path}: the checkpoint's weights do not fit the network") from exc
        state: dict[int, dict[str, Any]] = {pid: dict(t) for pid, t in optim_tensors.items()}
        for pid, entry in meta["optimizer"]["scalars"].items():
            state.setdefault(int(pid), {}).update(entry)
        try:
            self.optimizer.load_state_dict(
                {"state": state, "param_groups": meta["optimizer"]["param_groups"]}
            )
        except (ValueError, KeyError, RuntimeError) as exc:
            raise TrainingError(f"{path}: the optimizer state does not fit ({exc})") from exc
        if self.scaler is not None and meta.get("scaler"):
            self.scaler.load_state_dict(meta["scaler"])
        if rng is not None:
            torch.set_rng_state(rng)
        st = self.state
        st.step = int(meta["step"])
        st.elapsed_s = float(meta["elapsed_s"])
        st.micro = int(meta["micro"])
        st.crop = int(meta["crop"])
        st.val_step = int(meta["val_step"])
        st.last_metrics = meta.get("last_metrics")
        st.before = meta.get("before")
        st.history = list(meta.get("history", []))
        st.best_step = meta.get("best_step")
        st.best_metrics = meta.get("best_metrics")
        st.stale_validations = int(meta.get("stale_validations") or 0)
        self.best_state = best_state or None

    def _check_same_run(self, meta: Mapping[str, Any], path: Path) -> None:
        problems = []
        if meta.get("fingerprint") != _fingerprint(self.data):
            problems.append(
                f"the training data differ (checkpoint: {meta.get('train_images')} training and "
                f"{meta.get('val_images')} validation images; now {len(self.data.train)} and "
                f"{len(self.data.val)}, or other images or classes)"
            )
        # a field the checkpoint's version did not have took its default then
        saved = {**DEFAULT_CONFIG.to_dict(), **meta.get("config", {})}
        now = self.config.to_dict()
        changed = [
            f"{k} {saved.get(k)!r} -> {now[k]!r}"
            for k in now
            if k not in _RESUMABLE_CHANGES and saved.get(k) != now[k]
        ]
        if changed:
            problems.append("the recipe differs: " + ", ".join(changed))
        if meta.get("arch") != self.arch.to_dict():
            problems.append(
                f"the architecture differs ({meta.get('arch')} vs {self.arch.to_dict()})"
            )
        if meta.get("world_size") != self.env.world_size:
            problems.append(
                f"it was made by {meta.get('world_size')} process(es), now {self.env.world_size}"
            )
        if problems:
            raise TrainingError(
                f"{path} belongs to another training run and cannot be resumed: "
                + "; ".join(problems)
            )

    # ------------------------------------------------------------------ run

    def run(self) -> Generator[TrainProgress, None, TrainResult]:
        cfg, data = self.config, self.data
        self.env = ddp.current()
        self.device = _device_for(cfg.device, self.env)
        self.amp, use_scaler = _resolve_amp(self.device, cfg.precision)
        started = time.monotonic()
        self.t0 = started
        torch.manual_seed(cfg.seed)
        network, self.head = self._network()
        self.network = network
        self._cancel_hooks = (
            _install_cancel_checks(network, self.cancel) if self.cancel is not None else []
        )
        info_base = ModelInfo(
            arch=self.arch,
            labelset=data.labelset,
            normalization=self.init.info.normalization if self.init else Normalization(),
        )
        per_rank = math.ceil(len(data.train) / self.env.world_size)
        self.steps_per_epoch = math.ceil(per_rank / cfg.batch_size)
        self.total_steps = None if cfg.epochs is None else cfg.epochs * self.steps_per_epoch

        yield self._message(data.describe())
        if self.head == "new_head":
            assert self.init is not None
            yield self._message(
                f"the starting model's classes ({', '.join(self.init.info.labelset.names)}) "
                f"differ from the data's ({', '.join(data.labelset.names)}): the new model "
                "keeps the encoder and gets a new head"
            )

        # One pass over the label maps before any training: class weights, and
        # labels that are no class refused now rather than epochs later.
        if cfg.class_weighting == "median_frequency":
            weights = median_frequency_weights(data, self.num_classes)
        else:
            weights = np.ones(self.num_classes, np.float32)
            for sample in data.train:
                check_labels(sample, sample.load_labels(), self.num_classes)
        for sample in data.val:
            check_labels(sample, sample.load_labels(), self.num_classes)
        self.class_weight_list = [round(float(w), 4) for w in weights]

        network.to(self.device).to(memory_format=torch.channels_last)
        if cfg.freeze_encoder:
            for name, p in network.named_parameters():
                if name.startswith("encoder."):
                    p.requires_grad_(False)
        self.params = [p for p in network.parameters() if p.requires_grad]
        self.optimizer = self._optimizer(network)
        self.scaler = torch.amp.GradScaler("cuda") if use_scaler else None
        self.class_weights = torch.from_numpy(weights).to(self.device)
        self.evaluator = _Evaluator(network, info_base, self.device, self.amp)
        self.last_checkpoint = time.monotonic()
        if self.checkpoint_dir is not None and self.env.is_main:
            try:
                self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise TrainingError(
                    f"{self.checkpoint_dir}: cannot create the checkpoint folder ({exc})"
                ) from exc

        st = self.state
        self.best_state: dict[str, torch.Tensor] | None = None
        if self.resume:
            self._load_checkpoint()
            yield self._message(
                f"resumed from step {st.step}"
                + (f" of {self.total_steps}" if self.total_steps else "")
                + f" ({self.checkpoint_dir / CHECKPOINT_NAME})"
            )
        elif self.head == "kept" and data.val:
            st.before = yield from self._validate("starting model")
            self._track_best(st.before)

        self.model: nn.Module = network
        if self.env.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(network, device_ids=ids)
        self._set_train_mode()
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
                if cfg.patience and st.stale_validations >= cfg.patience:
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
            loss, stopped, notes = self._step(indices, epoch)
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
                "step",
                loss=loss,
                lr=self.optimizer.param_groups[0]["lr"],
                images_per_s=ips,
                eta_s=self._eta(step_time),
            )
            if (
                self.checkpoint_dir is not None
                and time.monotonic() - self.last_checkpoint >= cfg.checkpoint_every_s
            ):
                path = self._save_checkpoint()
                if path is not None:
                    yield self._report("checkpoint", message=str(path))

        if stopped is None:
            path = self._save_checkpoint()
            if path is not None:
                yield self._report("checkpoint", message=str(path))
        if data.val and self.env.is_main:
            if st.val_step == st.step and st.last_metrics is not None:
                after = st.last_metrics
            else:
                after = yield from self._validate("final model")
        else:
            after = None
        best = st.best_metrics
        if (
            cfg.keep_best
            and after is not None
            and best is not None
            and self.best_state is not None
            and best["mean_iou"] > after["mean_iou"]
        ):
            self.network.load_state_dict(self.best_state)
            after = best
            yield self._message(
                "kept the starting weights: no epoch beat them on validation"
                if st.best_step == 0
                else f"kept the weights of step {st.best_step}, the best on validation"
            )
        # every run of a resumed training counts, not only this one
        duration = self._elapsed() + (self.t0 - started)
        return self._result(after, stopped, duration)

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

    def _result(
        self, after: dict[str, Any] | None, stopped: str | None, duration: float
    ) -> TrainResult:
        cfg, data, st = self.config, self.data, self.state
        network = self.network
        for handle in self._cancel_hooks:  # the model outlives the run
            handle.remove()
        network.to("cpu").to(memory_format=torch.contiguous_format)
        for p in network.parameters():
            p.requires_grad_(True)
        network.eval()
        before = st.before if self.head == "kept" else None
        improved, verdict = _verdict(
            before, after, cfg.verdict_pixels, kept_start=cfg.keep_best and st.best_step == 0
        )
        train_names = [s.name for s in data.train]
        val_names = [s.name for s in data.val]
        parent = None
        if self.init is not None:
            parent = {
                "path": None if self.init.path is None else str(self.init.path),
                "arch": self.init.info.arch.to_dict(),
                "labelset": self.init.info.labelset.name,
                "mean_iou": self.init.info.metrics.get("mean_iou"),
                "provenance": _strip_names(self.init.info.provenance),
            }
        provenance = default_provenance(
            kind="fine-tuned" if self.head == "kept" else "trained",
            parent=parent,
            head={"kept": "kept", "new_head": "new head, encoder kept", "new": "new model"}[
                self.head
            ],
            source=data.source,
            train_images=len(train_names),
            val_images=len(val_names),
            train_names=train_names[:_MAX_NAMES],
            val_names=val_names[:_MAX_NAMES],
            names_truncated=len(train_names) > _MAX_NAMES or len(val_names) > _MAX_NAMES,
            recipe=cfg.to_dict(),
            duration_s=round(duration, 2),
            steps=st.step,
            total_steps=self.total_steps,
            epochs=round(st.step / self.steps_per_epoch, 3),
            stopped_early=stopped,
            device=str(self.device),
            precision=_amp_name(self.amp),
            world_size=self.env.world_size,
            class_weights=self.class_weight_list,
            micro_batch=st.micro if st.micro != cfg.batch_size else None,
            crop_used=st.crop if st.crop != cfg.crop else None,
            before_mean_iou=None if before is None else before["mean_iou"],
            after_mean_iou=None if after is None else after["mean_iou"],
        )
        info = ModelInfo(
            arch=self.arch,
            labelset=data.labelset,
            normalization=self.evaluator.info.normalization,
            provenance=provenance,
            metrics=dict(after) if after is not None else {},
        )
        return TrainResult(
            model=LoadedModel(info, network),
            before=before,
            after=after,
            improved=improved,
            stopped_early=stopped,
            verdict=verdict,
        )


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


def _verdict(
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    min_pixels: int,
    *,
    kept_start: bool,
) -> tuple[bool | None, str]:
    """Whether the new model is better, and the sentence that says so (and on what)."""
    if after is None:
        return None, "no validation images: mark some (or hold some out) to measure a run"
    images, pixels = after.get("images", 0), after.get("num_pixels", 0)
    on = f"on {images} validation image(s), {pixels:,} labelled pixels"
    if before is None:
        return None, f"new head or new model: mIoU {after['mean_iou']:.3f} {on}"
    if images < 2 or pixels < min_pixels:
        return None, (
            f"mIoU {before['mean_iou']:.3f} -> {after['mean_iou']:.3f} {on}: too few to "
            "judge; label and hold out more images for a verdict"
        )
    if kept_start:
        return False, (
            f"NOT better {on} (mIoU {before['mean_iou']:.3f}): no epoch beat the starting "
            "model, so the new version has its weights"
        )
    better = after["mean_iou"] > before["mean_iou"]
    return better, (
        f"{'better' if better else 'NOT better'} {on}: mIoU "
        f"{before['mean_iou']:.3f} -> {after['mean_iou']:.3f}"
    )


def _json_safe(value: Any) -> Any:
    """Tuples to lists, tensors and numpy scalars to numbers: what JSON can hold."""
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if torch.is_tensor(value):
        return value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def fine_tune(
    data: TrainingData,
    *,
    init: LoadedModel | None = None,
    arch: ArchSpec | None = None,
    config: TrainConfig = DEFAULT_CONFIG,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    cancel: Callable[[], bool] | None = None,
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
    if resume:
        if checkpoint_dir is None:
            raise TrainingError("resuming needs the checkpoint folder")
        _read_checkpoint(Path(checkpoint_dir))
    folder = None if checkpoint_dir is None else Path(checkpoint_dir)
    return _Run(data, init, arch, config, folder, resume, cancel).run()
