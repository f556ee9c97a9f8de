"""Where and in what precision training computes: the device, bf16 or fp32, autocast.

Training keeps float32 master weights and runs the forward pass and the loss
under :func:`torch.autocast` where a lower precision is fast: bf16 on CPUs
with bf16 hardware and on CUDA GPUs that support it, fp16 (with a gradient
scaler) on older GPUs, fp32 otherwise and on MPS. Validation and
:func:`~segstudio.training.evaluate.evaluate` use the same choice, so their
scores agree.
"""

from __future__ import annotations

import contextlib

import torch

from segstudio.core.errors import SegStudioError, TrainingError
from segstudio.model.predictor import cpu_has_native_bf16, select_device
from segstudio.training import ddp
from segstudio.training.config import Precision

__all__ = ["amp_name", "autocast", "memory_format", "resolve_amp", "training_device"]


def resolve_amp(
    device: torch.device, precision: Precision | str
) -> tuple[torch.dtype | None, bool]:
    """The autocast dtype (None: fp32) and whether a gradient scaler is needed.

    Raises
    ------
    TrainingError
        bf16 asked for on a GPU without it.
    """
    if precision == Precision.FP32 or device.type == "mps":
        return None, False
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return torch.bfloat16, False
        if precision == Precision.BF16:
            raise TrainingError("this GPU has no bf16; use precision auto or fp32")
        return torch.float16, True
    if precision == Precision.BF16 or cpu_has_native_bf16():
        return torch.bfloat16, False
    return None, False


def memory_format(device: torch.device, dtype: torch.dtype | None) -> torch.memory_format:
    """The layout training runs in: channels-last for bf16/fp16 and on GPUs, where its
    kernels are the fast ones; plain NCHW for float32 on the CPU, where oneDNN's
    channels-last training was the slower (AVX2: a step 6 % slower at 320 x 320,
    ``benchmarks/bench_train.py --init``)."""
    if device.type == "cpu" and dtype is None:
        return torch.contiguous_format
    return torch.channels_last


def amp_name(dtype: torch.dtype | None) -> str:
    """``"fp32"``, ``"bf16"`` or ``"fp16"`` for an autocast dtype (the provenance's words)."""
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def training_device(config_device: str, env: ddp.DistEnv) -> torch.device:
    """The device of this process: ``config_device`` resolved, one GPU per rank under DDP.

    Raises
    ------
    TrainingError
        The device is unknown or unavailable.
    """
    try:
        device = select_device(config_device)
    except SegStudioError as exc:
        raise TrainingError(str(exc)) from exc
    if device.type == "cuda" and env.distributed and device.index is None:
        device = torch.device("cuda", env.local_rank % torch.cuda.device_count())
    return device


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Autocast to ``dtype`` on ``device``; nothing for fp32 (``dtype`` None)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)
