"""The device and precision choice of training."""

from __future__ import annotations

import pytest
import torch

from segstudio.core.errors import TrainingError
from segstudio.training import ddp
from segstudio.training.precision import amp_name, autocast, resolve_amp, training_device


def test_cpu_precision_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = torch.device("cpu")
    assert resolve_amp(cpu, "fp32") == (None, False)
    assert resolve_amp(cpu, "bf16") == (torch.bfloat16, False)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")  # no bf16 hardware: auto means fp32
    assert resolve_amp(cpu, "auto") == (None, False)
    assert resolve_amp(torch.device("mps"), "bf16") == (None, False)
    assert [amp_name(d) for d in (None, torch.bfloat16, torch.float16)] == ["fp32", "bf16", "fp16"]


def test_autocast_only_below_fp32() -> None:
    cpu = torch.device("cpu")
    a = torch.ones(4, 4)
    with autocast(cpu, None):
        assert (a @ a).dtype == torch.float32
    with autocast(cpu, torch.bfloat16):
        assert (a @ a).dtype == torch.bfloat16


def test_an_unknown_device_is_a_training_error() -> None:
    assert training_device("cpu", ddp.SINGLE) == torch.device("cpu")
    with pytest.raises(TrainingError):
        training_device("tpu", ddp.SINGLE)
