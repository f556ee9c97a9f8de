"""A checkpoint's header, read without torch: is there a run to resume, and where is it?

The window asks this on its own thread when the user starts a fine-tune
("a run was interrupted at step 40 of 200: resume it?"), so nothing here may
import torch; :mod:`segstudio.training.checkpoint` writes and loads the
checkpoints themselves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from segstudio.core.errors import ModelFileError, TrainingError
from segstudio.core.safetensors_header import read_safetensors_header

CHECKPOINT_NAME = "checkpoint.safetensors"
_CHECKPOINT_FORMAT = "segstudio.checkpoint"
_CHECKPOINT_VERSION = 1
_META_KEY = "segstudio.checkpoint"


def read_checkpoint(folder: Path) -> tuple[dict[str, Any], Path]:
    """The JSON of the checkpoint in ``folder``, and the file's path.

    Raises
    ------
    TrainingError
        No checkpoint, an unreadable one, not a SegStudio checkpoint, or one
        written by a newer SegStudio.
    """
    path = Path(folder) / CHECKPOINT_NAME
    if not path.is_file():
        raise TrainingError(f"{folder}: no checkpoint ({CHECKPOINT_NAME}) to resume from")
    try:
        meta = read_safetensors_header(path, what="checkpoint").document(_META_KEY)
    except ModelFileError as exc:
        raise TrainingError(str(exc)) from exc
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
        meta, _ = read_checkpoint(folder)
    except TrainingError:
        return None
    keys = ("step", "total_steps", "epoch_float", "elapsed_s", "config", "arch", "saved_at")
    info = {k: meta.get(k) for k in keys}
    info["fingerprint"] = meta.get("fingerprint")
    return info
