"""Training checkpoints: one safetensors file a run writes as it goes and resumes from.

``checkpoint.safetensors`` (in the run's checkpoint folder) is written
atomically. Its tensors are the weights (``model.*``), the optimizer's tensor
state (``optim.<param id>.<name>``), the best weights so far with
``keep_best`` (``best.*``) and the torch RNG (``rng.torch``); everything else
(step, recipe, data fingerprint, optimizer settings and scalars, OOM
adjustments, the ``before`` metrics) is JSON in the file's header. Never
pickle. A checkpoint of another recipe, other data, another architecture or
another number of processes is refused with a :class:`TrainingError` that
names the differences.

A checkpoint that cannot be written (a full disk) raises :class:`TrainingError`
and leaves the previous one as it was; the loop reports it and trains on. The
temporary files of writes a kill cut short (``.checkpoint.safetensors.<8 hex
digits>.tmp.safetensors``, possibly full size) are removed by the next run
that uses the folder (:func:`sweep_checkpoint_temps`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from segstudio.core.atomic import atomic_path
from segstudio.core.errors import ModelFileError, TrainingError
from segstudio.model.files import as_write_error
from segstudio.training.checkpoint_meta import (
    _CHECKPOINT_FORMAT,
    _CHECKPOINT_VERSION,
    _META_KEY,
    CHECKPOINT_NAME,
    checkpoint_info,
    read_checkpoint,
)
from segstudio.training.config import DEFAULT_CONFIG, TrainConfig
from segstudio.training.data import TrainingData

__all__ = [
    "CHECKPOINT_NAME",
    "RunState",
    "check_same_run",
    "checkpoint_info",
    "fingerprint",
    "load_checkpoint",
    "read_checkpoint",
    "run_identity",
    "sweep_checkpoint_temps",
    "sweep_temp_writes",
    "write_checkpoint",
]

_log = logging.getLogger(__name__)

#: Config fields a resumed run may change: they do not change what is learnt.
_RESUMABLE_CHANGES = frozenset({"device", "checkpoint_every_s", "verdict_pixels"})
#: Losses kept in a checkpoint's history.
_HISTORY = 1000


@dataclass
class RunState:
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

    def to_meta(self, elapsed_s: float) -> dict[str, Any]:
        """The state's part of a checkpoint's JSON, with the time trained so far."""
        return {
            "step": self.step,
            "elapsed_s": elapsed_s,
            "micro": self.micro,
            "crop": self.crop,
            "val_step": self.val_step,
            "last_metrics": self.last_metrics,
            "before": self.before,
            "history": self.history[-_HISTORY:],
            "best_step": self.best_step,
            "best_metrics": self.best_metrics,
            "stale_validations": self.stale_validations,
        }

    def load_meta(self, meta: Mapping[str, Any]) -> None:
        """Take the state of a checkpoint's JSON (fields older versions lack keep defaults)."""
        self.step = int(meta["step"])
        self.elapsed_s = float(meta["elapsed_s"])
        self.micro = int(meta["micro"])
        self.crop = int(meta["crop"])
        self.val_step = int(meta["val_step"])
        self.last_metrics = meta.get("last_metrics")
        self.before = meta.get("before")
        self.history = list(meta.get("history", []))
        self.best_step = meta.get("best_step")
        self.best_metrics = meta.get("best_metrics")
        self.stale_validations = int(meta.get("stale_validations") or 0)


def fingerprint(data: TrainingData) -> str:
    """A hash of the training and validation image names and the classes."""
    doc = {
        "train": [s.name for s in data.train],
        "val": [s.name for s in data.val],
        "classes": data.labelset.to_dict()["classes"],
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def run_identity(
    data: TrainingData, config: TrainConfig, arch: Mapping[str, Any], world_size: int
) -> dict[str, Any]:
    """What a checkpoint records of its run so that :func:`check_same_run` can tell
    another run's (``arch`` as ``ArchSpec.to_dict()``)."""
    return {
        "config": config.to_dict(),
        "fingerprint": fingerprint(data),
        "train_images": len(data.train),
        "val_images": len(data.val),
        "world_size": world_size,
        "arch": dict(arch),
        "labelset": data.labelset.to_dict(),
    }


def teacher_identity(network: nn.Module | None) -> dict[str, Any] | None:
    """What a checkpoint records of a distillation's teacher: a digest of its weights
    (None without a teacher), so that a resume with another teacher is refused."""
    if network is None:
        return None
    digest = hashlib.sha256()
    for name, tensor in sorted(network.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return {"weights_sha256": digest.hexdigest()}


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


def write_checkpoint(
    folder: Path,
    meta: Mapping[str, Any],
    *,
    network: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    best_state: Mapping[str, torch.Tensor] | None,
) -> Path:
    """Write ``folder/checkpoint.safetensors`` atomically; return its path.

    ``meta`` is the run's JSON (its :meth:`RunState.to_meta`, recipe, data,
    ...); the format, version, time, optimizer settings and scaler are added here.
    """
    tensors: dict[str, torch.Tensor] = {}
    for k, v in network.state_dict().items():
        tensors[f"model.{k}"] = v.detach().to("cpu").contiguous()
    opt = optimizer.state_dict()
    scalars: dict[str, dict[str, Any]] = {}
    for pid, entry in opt["state"].items():
        for k, v in entry.items():
            if torch.is_tensor(v):
                tensors[f"optim.{pid}.{k}"] = v.detach().to("cpu").contiguous()
            else:
                scalars.setdefault(str(pid), {})[k] = v
    for k, v in (best_state or {}).items():
        tensors[f"best.{k}"] = v.contiguous()
    tensors["rng.torch"] = torch.get_rng_state()
    doc = {
        "format": _CHECKPOINT_FORMAT,
        "version": _CHECKPOINT_VERSION,
        "saved_at": time.time(),
        **meta,
        "optimizer": {"param_groups": _json_safe(opt["param_groups"]), "scalars": scalars},
        "scaler": None if scaler is None else _json_safe(scaler.state_dict()),
    }
    path = folder / CHECKPOINT_NAME
    try:
        with atomic_path(path) as tmp:
            try:
                save_file(tensors, str(tmp), metadata={_META_KEY: json.dumps(doc, allow_nan=False)})
            except SafetensorError as exc:
                raise as_write_error(path, exc) from exc
    except (OSError, ModelFileError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise TrainingError(f"cannot write the checkpoint {path} ({reason})") from exc
    return path


def _temp_pattern(name: str) -> re.Pattern[str]:
    """The temporary names :func:`segstudio.core.atomic.atomic_path` gives ``name``."""
    suffix = Path(name).suffix
    return re.compile(rf"^\.{re.escape(name[:180])}\.[0-9a-f]{{8}}\.tmp{re.escape(suffix)}$")


def sweep_temp_writes(folder: Path, name: str) -> list[Path]:
    """Delete the temporary files killed atomic writes of ``folder/name`` left behind.

    Only names of exactly that pattern are touched; failures are logged.
    """
    pattern = _temp_pattern(name)
    try:
        with os.scandir(folder) as it:
            found = [Path(e.path) for e in it if pattern.match(e.name) and e.is_file()]
    except (FileNotFoundError, NotADirectoryError):
        return []
    removed: list[Path] = []
    for path in found:
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            _log.warning("cannot delete %s: %s", path, exc)
            continue
        removed.append(path)
    if removed:
        _log.info("removed %d unfinished write(s) of %s in %s", len(removed), name, folder)
    return removed


def sweep_checkpoint_temps(folder: Path) -> list[Path]:
    """Delete the temporary checkpoint files of killed runs in ``folder``."""
    return sweep_temp_writes(folder, CHECKPOINT_NAME)


def load_checkpoint(
    path: Path,
    meta: Mapping[str, Any],
    *,
    network: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
) -> dict[str, torch.Tensor] | None:
    """Load a checkpoint's weights, optimizer, scaler and RNG; return its best weights.

    ``meta`` is the checkpoint's JSON (:func:`read_checkpoint`); the best
    weights are None when the run kept none.

    Raises
    ------
    TrainingError
        The tensors cannot be read or do not fit the network or optimizer.
    """
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
        network.load_state_dict(model_state, strict=True)
    except RuntimeError as exc:
        raise TrainingError(f"{path}: the checkpoint's weights do not fit the network") from exc
    state: dict[int, dict[str, Any]] = {pid: dict(t) for pid, t in optim_tensors.items()}
    for pid, entry in meta["optimizer"]["scalars"].items():
        state.setdefault(int(pid), {}).update(entry)
    try:
        groups = meta["optimizer"]["param_groups"]
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, KeyError, RuntimeError) as exc:
        raise TrainingError(f"{path}: the optimizer state does not fit ({exc})") from exc
    if scaler is not None and meta.get("scaler"):
        scaler.load_state_dict(meta["scaler"])
    if rng is not None:
        torch.set_rng_state(rng)
    return best_state or None


def check_same_run(
    meta: Mapping[str, Any],
    path: Path,
    *,
    data: TrainingData,
    config: TrainConfig,
    arch: Mapping[str, Any],
    world_size: int,
    teacher: Mapping[str, Any] | None = None,
) -> None:
    """Refuse to resume a checkpoint of another run (``arch`` as ``ArchSpec.to_dict()``;
    ``teacher`` as :func:`teacher_identity` gives it).

    Raises
    ------
    TrainingError
        The data, the recipe (beyond device and checkpoint settings), the
        architecture or the number of processes differ; the message says how.
    """
    problems = []
    if meta.get("fingerprint") != fingerprint(data):
        problems.append(
            f"the training data differ (checkpoint: {meta.get('train_images')} training and "
            f"{meta.get('val_images')} validation images; now {len(data.train)} and "
            f"{len(data.val)}, or other images or classes)"
        )
    # a field the checkpoint's version did not have took its default then
    saved = {**DEFAULT_CONFIG.to_dict(), **meta.get("config", {})}
    now = config.to_dict()
    changed = [
        f"{k} {saved.get(k)!r} -> {now[k]!r}"
        for k in now
        if k not in _RESUMABLE_CHANGES and saved.get(k) != now[k]
    ]
    if changed:
        problems.append("the recipe differs: " + ", ".join(changed))
    if meta.get("arch") != arch:
        problems.append(f"the architecture differs ({meta.get('arch')} vs {arch})")
    if meta.get("world_size") != world_size:
        problems.append(f"it was made by {meta.get('world_size')} process(es), now {world_size}")
    if meta.get("teacher") != (None if teacher is None else dict(teacher)):
        was, now_t = meta.get("teacher") is not None, teacher is not None
        problems.append(
            "it was distilled from another teacher"
            if was and now_t
            else "it was distilled from a teacher, now there is none"
            if was
            else "it had no teacher, now there is one"
        )
    if problems:
        raise TrainingError(
            f"{path} belongs to another training run and cannot be resumed: " + "; ".join(problems)
        )
