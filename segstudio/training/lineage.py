"""Where a trained model comes from: the network a run starts with, and its provenance.

:func:`start_network` copies the starting model (never changing it), or keeps
only its encoder when the data's classes differ, or builds a new network;
:class:`Head` records which. :func:`provenance` composes the lineage a trained
model file carries: its parent, the images it was trained and validated on,
the recipe, how long and on what it ran, and its before/after scores.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from segstudio.core.errors import TrainingError
from segstudio.core.labelset import LabelSet
from segstudio.model.arch import ArchSpec
from segstudio.model.files import LoadedModel, default_provenance, new_model
from segstudio.training.checkpoint import RunState
from segstudio.training.config import TrainConfig
from segstudio.training.data import TrainingData

__all__ = ["Head", "provenance", "start_network"]

#: Names kept in a model's provenance (the counts are always exact).
MAX_NAMES = 1000


class Head(enum.StrEnum):
    """How the trained network's head came about (recorded in checkpoints)."""

    KEPT = "kept"  # the starting model's classes: the whole model is fine-tuned
    NEW_HEAD = "new_head"  # its encoder kept, a new decoder and classifier
    NEW = "new"  # a new network of the architecture

    @property
    def words(self) -> str:
        """How the provenance says it."""
        return {"kept": "kept", "new_head": "new head, encoder kept", "new": "new model"}[self]


def start_network(
    init: LoadedModel | None, arch: ArchSpec, labelset: LabelSet, seed: int
) -> tuple[nn.Module, Head]:
    """A fresh copy of the network to train, and how its head came about.

    With ``init`` of the same class names (recoloured at most) the whole model
    is copied; with other classes only the tensors named ``encoder.*`` are
    kept, in a new network of ``arch`` seeded by ``seed``; without ``init`` the
    network is new.

    Raises
    ------
    TrainingError
        The starting model's encoder does not fit its architecture.
    """
    if init is None:
        return new_model(arch, labelset, seed=seed).network, Head.NEW
    if init.info.labelset.same_names(labelset):  # recoloured: same outputs
        return copy.deepcopy(init.network), Head.KEPT
    fresh = new_model(arch, labelset, seed=seed).network
    encoder = {
        k: v.detach().clone()
        for k, v in init.network.state_dict().items()
        if k.startswith("encoder.")
    }
    missing, unexpected = fresh.load_state_dict(encoder, strict=False)
    if unexpected or any(k.startswith("encoder.") for k in missing):
        raise TrainingError("the starting model's encoder does not fit its architecture")
    return fresh, Head.NEW_HEAD


def _strip_names(provenance: Mapping[str, Any]) -> dict[str, Any]:
    """A parent's provenance without its image-name lists, so lineage stays small."""
    return {k: v for k, v in provenance.items() if k not in ("train_names", "val_names")}


def provenance(
    *,
    head: Head,
    init: LoadedModel | None,
    data: TrainingData,
    config: TrainConfig,
    state: RunState,
    steps_per_epoch: int,
    total_steps: int | None,
    duration_s: float,
    stopped_early: str | None,
    device: str,
    precision: str,
    world_size: int,
    class_weights: Sequence[float],
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The provenance of a trained model (``ModelInfo.provenance``).

    ``state`` gives the steps done and the batch split and crop that out-of-memory
    errors forced (recorded only when they differ from the recipe).
    """
    train_names = [s.name for s in data.train if not s.replayed]
    replayed = [s.name for s in data.train if s.replayed]
    val_names = [s.name for s in data.val]
    parent = None
    if init is not None:
        parent = {
            "path": None if init.path is None else str(init.path),
            "arch": init.info.arch.to_dict(),
            "labelset": init.info.labelset.name,
            "mean_iou": init.info.metrics.get("mean_iou"),
            "provenance": _strip_names(init.info.provenance),
        }
    return default_provenance(
        kind="fine-tuned" if head == Head.KEPT else "trained",
        parent=parent,
        head=head.words,
        source=data.source,
        train_images=len(train_names),
        val_images=len(val_names),
        train_names=train_names[:MAX_NAMES],
        val_names=val_names[:MAX_NAMES],
        names_truncated=len(train_names) > MAX_NAMES or len(val_names) > MAX_NAMES,
        recipe=config.to_dict(),
        duration_s=round(duration_s, 2),
        steps=state.step,
        total_steps=total_steps,
        epochs=round(state.step / steps_per_epoch, 3),
        stopped_early=stopped_early,
        device=device,
        precision=precision,
        world_size=world_size,
        class_weights=list(class_weights),
        micro_batch=state.micro if state.micro != config.batch_size else None,
        crop_used=state.crop if state.crop != config.crop else None,
        before_mean_iou=None if before is None else before["mean_iou"],
        after_mean_iou=None if after is None else after["mean_iou"],
        **({"replayed_images": len(replayed), "replayed_names": replayed} if replayed else {}),
    )
