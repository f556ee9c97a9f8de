"""The live learner's recipe (:class:`LiveConfig`) and the report of one fit
(:class:`FitReport`): plain values, no torch."""

from __future__ import annotations

import math
from dataclasses import dataclass

from segstudio.core.errors import TrainingError

__all__ = ["FitReport", "LiveConfig"]


@dataclass(frozen=True)
class LiveConfig:
    """The live learner's recipe.

    Attributes
    ----------
    hidden : int
        Hidden units of the head.
    decoder : bool or None
        Read the base's decoder too; None: when the base knows some of the
        project's classes (its scores are then where the head starts from).
    smooth : int
        Without the decoder, the logits are averaged over a box of this side:
        fewer specks, so fewer strokes to correct (28 % fewer on horses).
    colour_strides : tuple of int
        Cell sizes at which the averaged input colour is a feature too.
    mirror : bool or None
        Also read every sampled pixel from the left-right mirrored image (twice
        the samples per image, and twice the feature time of an update): a
        cheap augmentation. None: when the decoder is not read (classes the
        base does not know), where it raised horse IoU on a dev split of
        Weizmann horses from 0.369 to 0.392 (with ``per_image`` 8000).
    per_image : int
        Labelled pixels sampled per image.
    min_per_class : int
        Pixels sampled of every class present in an image (when it has them).
    max_samples : int
        Samples kept in all; beyond it every image keeps an equal share.
    steps, warm_steps : int
        Minibatches of the first fit, and of every later (warm-started) one.
    batch : int
        Samples per minibatch.
    lr, weight_decay : float
        Adam's step size; L2 penalty on the head's weights.
    replay_confidence : float
        Replay (:meth:`LiveLearner.add_replay`) takes the base network's
        predictions on unlabelled images where its confidence is at least this.
    replay_weight : float
        What one replayed image weighs in the fit, against a labelled one (1).
    seed : int
        Seeds sampling and initialisation.
    """

    hidden: int = 64
    decoder: bool | None = None
    smooth: int = 9
    colour_strides: tuple[int, ...] = (4, 16, 64)
    mirror: bool | None = None
    per_image: int = 4000
    min_per_class: int = 200
    max_samples: int = 160_000
    steps: int = 400
    warm_steps: int = 200
    batch: int = 2048
    lr: float = 3e-3
    weight_decay: float = 1e-1
    replay_confidence: float = 0.9
    replay_weight: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        ints = ("hidden", "per_image", "min_per_class", "max_samples", "steps", "batch")
        bad = [n for n in ints if not isinstance(getattr(self, n), int) or getattr(self, n) < 1]
        if not isinstance(self.warm_steps, int) or self.warm_steps < 0:
            bad.append("warm_steps")
        if not (math.isfinite(self.lr) and self.lr > 0):
            bad.append("lr")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            bad.append("weight_decay")
        if not 0.0 <= self.replay_confidence <= 1.0:
            bad.append("replay_confidence")
        if not (math.isfinite(self.replay_weight) and self.replay_weight >= 0):
            bad.append("replay_weight")
        if bad:
            raise TrainingError(f"bad live-learner setting(s): {', '.join(bad)}")


@dataclass(frozen=True)
class FitReport:
    """One fit of the head: how long it took and on how much."""

    seconds: float
    samples: int
    images: int
    loss: float
    replayed: int = 0  # unlabelled images whose base-network answers were learnt too
