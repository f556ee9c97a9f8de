"""What machine a benchmark ran on: the CPU, its instruction sets, and what torch uses.

Every speed figure names the CPU and whether it has AVX2 only, AVX-512 or AMX
(bf16 hardware), and whether oneDNN/ATen were capped to a lower ISA for the
run (``ONEDNN_MAX_CPU_ISA``, ``ATEN_CPU_CAPABILITY``: how an AMX machine
measures what an AVX2-only laptop gets). Import from a benchmark script as
``from machine import machine_info`` (scripts run with benchmarks/ on the path).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

#: The instruction sets that decide which CPU path is fastest.
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")
#: Environment variables that cap the ISA oneDNN and ATen use.
_CAPS = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")


def _cpuinfo() -> tuple[str, set[str]]:
    name, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return name, flags


def cpu_name() -> str:
    """The CPU's model name (Linux), else what the platform module says."""
    return _cpuinfo()[0]


def machine_info() -> dict[str, Any]:
    """The CPU, its instruction sets, the caps in force, cores and torch's view of them."""
    import torch

    from segstudio.model.predictor import cpu_has_native_bf16

    name, flags = _cpuinfo()
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu": name,
        "isa": [f for f in ISA_FLAGS if f in flags] if flags else "unknown",
        "isa_cap": {k: os.environ[k] for k in _CAPS if k in os.environ},
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_native_bf16": cpu_has_native_bf16(),
        "cores": os.cpu_count(),
        "cores_usable": affinity,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "host": platform.node(),
    }
