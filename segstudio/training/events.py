"""What a running fine-tune reports: one :class:`TrainProgress` per yield.

:func:`~segstudio.training.loop.fine_tune` is a generator; every item it
yields is a :class:`TrainProgress` whose :attr:`~TrainProgress.kind` says what
happened. Kinds are :class:`ProgressKind` members, which compare equal to
their plain strings (``p.kind == "step"``), so callers may use either. This
module imports no torch.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

__all__ = ["KINDS", "ProgressKind", "TrainProgress"]


class ProgressKind(enum.StrEnum):
    """What a :class:`TrainProgress` reports."""

    STEP = "step"  # an optimisation step finished
    VALIDATION = "validation"  # a validation image done, or (with metrics) a validation
    CHECKPOINT = "checkpoint"  # a checkpoint written (its path in the message)
    MESSAGE = "message"  # a notice for the person


#: The kinds' plain values, in order.
KINDS = tuple(k.value for k in ProgressKind)


@dataclass(frozen=True)
class TrainProgress:
    """One report of a running :func:`~segstudio.training.loop.fine_tune`.

    Attributes
    ----------
    kind : ProgressKind
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

    kind: ProgressKind
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

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", ProgressKind(self.kind))  # "step" -> STEP
