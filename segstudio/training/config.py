"""What a fine-tune is told and what it hands back: the recipe and the result.

:class:`TrainConfig` is a frozen, validated training recipe; its modes are
:class:`enum.StrEnum` members, so the plain strings of the command line, of a
window's settings and of saved checkpoints and provenance (``"adamw"``,
``"cosine"``, ...) are accepted, compare equal and serialise unchanged.
:class:`TrainResult` is what :func:`~segstudio.training.loop.fine_tune`
returns. This module imports no torch, so a window can build a recipe at
start-up.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from segstudio.core.errors import TrainingError

if TYPE_CHECKING:
    from segstudio.model.files import LoadedModel

__all__ = [
    "DEFAULT_CONFIG",
    "MIN_CROP",
    "AugmentStrength",
    "ClassWeighting",
    "Optimizer",
    "Precision",
    "Schedule",
    "TrainConfig",
    "TrainResult",
]

#: The crop is never halved below this on out-of-memory errors.
MIN_CROP = 64


class Optimizer(enum.StrEnum):
    """The optimiser of a run."""

    ADAMW = "adamw"
    SGD = "sgd"  # momentum 0.9


class Schedule(enum.StrEnum):
    """How the learning rate decays after the warm-up."""

    COSINE = "cosine"
    POLY = "poly"  # power 0.9


class ClassWeighting(enum.StrEnum):
    """How each class's pixels weigh in the loss."""

    MEDIAN_FREQUENCY = "median_frequency"
    NONE = "none"


class AugmentStrength(enum.StrEnum):
    """How far the training crops are scaled and rotated (see :mod:`segstudio.training.augment`)."""

    DEFAULT = "default"  # scale 0.75..1.5, rotation +-10 degrees
    LIGHT = "light"  # scale 0.9..1.15, rotation +-2 degrees: frames of one fixed camera


class Precision(enum.StrEnum):
    """The compute precision asked for (see :mod:`segstudio.training.precision`)."""

    AUTO = "auto"
    FP32 = "fp32"
    BF16 = "bf16"


#: The mode fields of a recipe and their enums: strings are turned into members.
_MODES: dict[str, type[enum.StrEnum]] = {
    "optimizer": Optimizer,
    "schedule": Schedule,
    "class_weighting": ClassWeighting,
    "precision": Precision,
    "augment": AugmentStrength,
}


def _is_int(v: object) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


def _is_num(v: object) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)


def _is_mode(v: object, mode: type[enum.StrEnum]) -> bool:
    return isinstance(v, str) and v in {m.value for m in mode}


def _choices(mode: type[enum.StrEnum]) -> str:
    return " or ".join(m.value for m in mode)


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
    optimizer : Optimizer
        ``"adamw"`` or ``"sgd"`` (momentum 0.9).
    schedule : Schedule
        ``"cosine"`` or ``"poly"`` (power 0.9) decay to 1% of ``lr``, after a
        linear warm-up of ``warmup_steps`` steps (at most a fifth of the run).
    freeze_encoder : bool
        Train only the decoder and classifier; the encoder's batch norms stay
        in eval mode.
    class_weighting : ClassWeighting
        ``"median_frequency"`` (from the training labels) or ``"none"``.
    corrected_weight : float
        Loss weight of pixels a person corrected. The data carries the weight
        maps: pass this to :func:`~segstudio.training.data.from_project` /
        :func:`~segstudio.training.data.load_source` (the CLI does);
        :func:`~segstudio.training.loop.fine_tune` records it in the recipe
        and uses the maps as given.
    precision : Precision
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
    distill_weight, distill_temperature : float
        With a teacher model (:func:`~segstudio.training.loop.fine_tune`'s
        ``teacher``), the loss is ``(1 - distill_weight) * cross-entropy +
        distill_weight * T^2 * KL(teacher || student)`` at temperature ``T``,
        on every pixel of the crop (unlabeled ones too). Without a teacher they
        are not used.
    replay : bool
        One click (:func:`~segstudio.session.training.one_click`) from a model
        that knows every class: also train on its own sure answers
        (confidence >= 0.9; the rest unlabelled) on up to 10 of the project's
        unlabelled images, so that it keeps what it knew where the labelled
        images do not show it.
    balanced_crops : bool
        Centre every other crop near a pixel of a class drawn uniformly from the
        classes of the image, so thin, rare classes (poles, signs) are seen as
        often as the road.

    The mode fields take their enum's members or its plain string values
    (turned into members).

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
    optimizer: Optimizer = Optimizer.ADAMW
    schedule: Schedule = Schedule.COSINE
    warmup_steps: int = 20
    freeze_encoder: bool = False
    class_weighting: ClassWeighting = ClassWeighting.MEDIAN_FREQUENCY
    corrected_weight: float = 2.0
    precision: Precision = Precision.AUTO
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
    augment: AugmentStrength = AugmentStrength.DEFAULT
    refit_all: bool = False
    live_head: bool = False
    distill_weight: float = 0.5
    distill_temperature: float = 2.0
    replay: bool = False

    def __post_init__(self) -> None:
        if self.epochs is not None and self.minutes is not None:
            raise TrainingError("give either epochs or minutes, not both")
        if self.epochs is None and self.minutes is None:
            object.__setattr__(self, "epochs", 20)

        def positive(v: object, top: float = math.inf) -> bool:
            return _is_num(v) and math.isfinite(v) and 0 < v <= top  # type: ignore[arg-type, operator]

        def count(v: object, low: int, high: float = math.inf) -> bool:
            return _is_int(v) and low <= v <= high  # type: ignore[operator]

        def mode(name: str) -> tuple[str, bool, str]:
            enum_type = _MODES[name]
            return name, _is_mode(getattr(self, name), enum_type), _choices(enum_type)

        rules: list[tuple[str, bool, str]] = [
            ("epochs", self.epochs is None or count(self.epochs, 1), ">= 1"),
            ("minutes", self.minutes is None or positive(self.minutes), "> 0"),
            ("batch_size", count(self.batch_size, 1, 4096), "1..4096"),
            ("crop", count(self.crop, MIN_CROP // 2, 8192), f"{MIN_CROP // 2}..8192"),
            ("lr", positive(self.lr, 10.0), "in (0, 10]"),
            ("weight_decay", self.weight_decay == 0 or positive(self.weight_decay, 1.0), "0..1"),
            mode("optimizer"),
            mode("schedule"),
            ("warmup_steps", count(self.warmup_steps, 0), ">= 0"),
            ("freeze_encoder", isinstance(self.freeze_encoder, bool), "true or false"),
            mode("class_weighting"),
            ("corrected_weight", positive(self.corrected_weight, 100.0), "in (0, 100]"),
            mode("precision"),
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
            mode("augment"),
            ("refit_all", isinstance(self.refit_all, bool), "true or false"),
            ("live_head", isinstance(self.live_head, bool), "true or false"),
            ("distill_weight", _is_num(w := self.distill_weight) and 0 <= w <= 1, "0..1"),
            ("distill_temperature", positive(self.distill_temperature, 100.0), "in (0, 100]"),
            ("replay", isinstance(self.replay, bool), "true or false"),
        ]
        problems = [
            f"{name} is {getattr(self, name)!r}, must be {rule}"
            for name, ok, rule in rules
            if not ok
        ]
        if problems:
            raise TrainingError("bad training recipe: " + "; ".join(problems))
        for name, enum_type in _MODES.items():
            object.__setattr__(self, name, enum_type(getattr(self, name)))

    def to_dict(self) -> dict[str, Any]:
        """The recipe as JSON-safe values (every field, ``epochs`` filled in, modes as strings)."""
        return {
            k: v.value if isinstance(v, enum.Enum) else v
            for k, v in dataclasses.asdict(self).items()
        }

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
class TrainResult:
    """What a finished (or early-stopped) :func:`~segstudio.training.loop.fine_tune` returns.

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
