"""Int8 inference through oneDNN for SegNet-family networks, calibrated on real images.

On a CPU without bf16 hardware (AVX2, AVX-512 without BF16) an int8 convolution
does about twice the work per instruction of a float32 one. This module turns a
SegNet-family network (encoder and decoder stages of conv [-> ReLU], pooling
indices driving the unpooling) into one whose stages run as int8 oneDNN
convolutions with the ReLU fused, while pooling with indices, unpooling and
the classifier stay in float32 (the logits, hence the confidence, keep full
precision):

    float32 -> quantise -> [int8 conv+ReLU]... -> int8 max-pool / unpool -> ...
            -> dequantise -> float32 classifier

Pooling and unpooling work on the int8 codes (:mod:`segstudio.model.int8_pool`),
so activations stay int8 from the first convolution to the classifier; each
stage's input is requantised to its own calibration on the small, pooled side.

Quantisation needs the range of every stage's activations. :func:`calibrate`
measures them on a few real images (a histogram observer, which clips rare
outliers) and returns them as a small JSON-safe dict; :func:`with_calibration`
stores that dict in the model file's provenance (key ``int8_calibration``), so a
model calibrated once predicts in int8 on every CPU that lacks bf16 hardware.
Activations use 7 bits (0..127): CPUs without VNNI add pairs of u8 x s8
products in 16 bits, which 8-bit activations can saturate.

oneDNN honours ``ONEDNN_MAX_CPU_ISA``, so int8 figures measured with
``ONEDNN_MAX_CPU_ISA=AVX2`` are those of an AVX2-only CPU. The quantised
engine is pinned to ``onednn`` (the ``x86`` engine may pick FBGEMM, which
chooses its kernels from CPUID and ignores that cap).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import platform
import threading
import warnings
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from segstudio.model.files import LoadedModel, with_metadata
from segstudio.model.layers import _EncoderDecoderWithIndices

log = logging.getLogger(__name__)

#: Where a model file's provenance keeps its int8 calibration.
CALIBRATION_KEY = "int8_calibration"
CALIBRATION_VERSION = 1
#: 7-bit activations: safe from 16-bit saturation on CPUs without VNNI.
_QMAX = 127


class QuantizationUnavailable(RuntimeError):  # noqa: N818 - a state, not a fault
    """Int8 inference cannot run here, or not for this network or model."""


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence torch.ao's deprecation chatter while it builds the int8 network."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        yield


_ENGINE_LOCK = threading.Lock()


@contextlib.contextmanager
def _onednn_engine() -> Iterator[None]:
    """Pack weights for oneDNN (the engine is a process-wide setting, so one thread at a
    time switches it, and it is restored after; packed weights keep their engine)."""
    with _ENGINE_LOCK:
        before = torch.backends.quantized.engine
        torch.backends.quantized.engine = "onednn"
        try:
            yield
        finally:
            torch.backends.quantized.engine = before


def int8_available() -> bool:
    """True on an x86-64 CPU whose PyTorch build has oneDNN's quantised engine (and
    still ships the eager quantisation API, which newer releases may drop)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        import torch.ao.nn.intrinsic
        import torch.ao.quantization
    except ImportError:
        return False
    return "onednn" in torch.backends.quantized.supported_engines


def _stage_ok(stage: nn.Module) -> bool:
    """A stage the int8 path handles: an ``nn.Sequential`` of Conv2d, BatchNorm2d, ReLU."""
    return isinstance(stage, nn.Sequential) and all(
        type(m) in (nn.Conv2d, nn.BatchNorm2d, nn.ReLU) for m in stage
    )


def _pools_2x2(pool: nn.Module) -> bool:
    """The 2 x 2, stride 2, ceil-mode max-pooling that :mod:`int8_pool` does in int8."""
    return (
        isinstance(pool, nn.MaxPool2d)
        and pool.kernel_size in (2, (2, 2))
        and pool.stride in (2, (2, 2))
        and pool.padding in (0, (0, 0))
        and pool.dilation in (1, (1, 1))
        and bool(pool.ceil_mode)
    )


def quantizable(network: nn.Module) -> bool:
    """True for SegNet-family networks whose every stage is conv [-> BN] [-> ReLU]."""
    return (
        isinstance(network, _EncoderDecoderWithIndices)
        and isinstance(network.middle, nn.Identity)
        and _pools_2x2(network.pool)
        and all(_stage_ok(s) for s in (*network.encoder, *network.decoder))
    )


def _fuse(stage: nn.Sequential) -> nn.Sequential:
    """Pair each Conv2d with the ReLU after it (one fused int8 op); BN must be folded."""
    import torch.ao.nn.intrinsic as nni

    layers, out, i = list(stage), [], 0
    while i < len(layers):
        layer = layers[i]
        if isinstance(layer, nn.BatchNorm2d):
            raise ValueError("fold batch norm before quantising")
        if isinstance(layer, nn.Conv2d) and i + 1 < len(layers) and type(layers[i + 1]) is nn.ReLU:
            out.append(nni.ConvReLU2d(layer, nn.ReLU()))
            i += 2
        else:
            out.append(layer)
            i += 1
    return nn.Sequential(*out)


class _QuantStage(nn.Module):
    """quantise -> the stage's convolutions -> dequantise."""

    def __init__(self, stage: nn.Sequential) -> None:
        from torch.ao.quantization import DeQuantStub, QuantStub

        super().__init__()
        self.quant = QuantStub()
        self.body = _fuse(stage)
        self.dequant = DeQuantStub()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dequant(self.body(self.quant(x)))


class Int8SegNet(nn.Module):
    """A converted int8 SegNet-family network whose pooling stays in int8.

    Runs the stages' int8 bodies of ``converted`` (a :func:`_prepared` network
    after ``convert``) with :func:`~segstudio.model.int8_pool.pool2x2` and
    :func:`~segstudio.model.int8_pool.unpool2x2` between them, requantising to
    each stage's calibrated input; the same result as ``converted`` itself
    (which dequantises around float pooling), faster.
    """

    def __init__(self, converted: nn.Module) -> None:
        super().__init__()
        self.net = converted
        stages = [*converted.encoder, *converted.decoder]
        self._qparams = [(float(s.quant.scale), int(s.quant.zero_point)) for s in stages]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from segstudio.model.int8_pool import pool2x2, requantize, unpool2x2

        net = self.net
        depth = len(net.encoder)
        x = net.encoder[0].quant(x)
        skips: list[tuple[torch.Tensor, tuple[int, int]]] = []
        for i, stage in enumerate(net.encoder):
            if i > 0:
                x = requantize(x, *self._qparams[i])
            x = stage.body(x)
            size = (int(x.shape[-2]), int(x.shape[-1]))
            x, where = pool2x2(x)
            skips.append((where, size))
        for j, (stage, (where, size)) in enumerate(zip(net.decoder, reversed(skips), strict=True)):
            x = unpool2x2(requantize(x, *self._qparams[depth + j]), where, size)
            x = stage.body(x)
        return net.classifier(net.decoder[-1].dequant(x))


def _prepared(folded: nn.Module, observer: Any) -> nn.Module:
    """A copy of ``folded`` with int8 stages, observed, ready for calibration."""
    from torch.ao.quantization import QConfig, default_per_channel_weight_observer, prepare

    net = copy.deepcopy(folded).float().eval()
    for stages in (net.encoder, net.decoder):
        for i, stage in enumerate(stages):
            stages[i] = _QuantStage(stage)
            stages[i].qconfig = QConfig(
                activation=observer, weight=default_per_channel_weight_observer
            )
    with _quiet():
        return prepare(net)


def _observers(net: nn.Module) -> dict[str, Any]:
    from torch.ao.quantization.observer import ObserverBase

    return {name: m for name, m in net.named_modules() if isinstance(m, ObserverBase)}


@torch.inference_mode()
def calibrate(
    model: LoadedModel, images: Iterable[np.ndarray], *, max_images: int = 16
) -> dict[str, Any]:
    """Measure the activation ranges of ``model``'s stages on real images.

    Parameters
    ----------
    model
        A SegNet-family model (see :func:`quantizable`).
    images
        ``H x W x 3`` uint8 RGB images like those the model will predict; the
        first ``max_images`` are used (10 to 20 are plenty).

    Returns
    -------
    dict
        JSON-safe: ``{"version", "images", "observer", "ranges": {name: [lo, hi]}}``,
        for :func:`with_calibration`.
    """
    from torch.ao.quantization import HistogramObserver

    from segstudio.model.predictor import fold_batchnorm

    folded = fold_batchnorm(copy.deepcopy(model.network).float().eval())
    if not quantizable(folded):
        raise QuantizationUnavailable(f"{model.info.arch.name}: no int8 path for this network")
    observer = HistogramObserver.with_args(dtype=torch.quint8, quant_min=0, quant_max=_QMAX)
    net = _prepared(folded, observer)
    norm = model.info.normalization
    mean = torch.tensor(norm.mean).view(1, -1, 1, 1)
    std = torch.tensor(norm.std).view(1, -1, 1, 1)
    count = 0
    for rgb in images:
        if count >= max_images:
            break
        x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float()
        net((x / 255.0 - mean) / std)
        count += 1
    if count == 0:
        raise ValueError("calibration needs at least one image")
    ranges = {}
    for name, obs in _observers(net).items():
        scale, zero = obs.calculate_qparams()
        s, z = float(scale.item()), int(zero.item())
        ranges[name] = [-z * s, (_QMAX - z) * s]
    return {
        "version": CALIBRATION_VERSION,
        "images": count,
        "observer": "histogram",
        "quant_max": _QMAX,
        "ranges": ranges,
    }


def with_calibration(model: LoadedModel, calibration: Mapping[str, Any]) -> LoadedModel:
    """``model`` with ``calibration`` kept in its provenance (saved with the model)."""
    provenance = {**model.info.provenance, CALIBRATION_KEY: dict(calibration)}
    return with_metadata(model, provenance=provenance)


def calibration_of(model: LoadedModel) -> Mapping[str, Any] | None:
    """The int8 calibration stored with ``model``, or None."""
    cal = model.info.provenance.get(CALIBRATION_KEY)
    if isinstance(cal, Mapping) and cal.get("version") == CALIBRATION_VERSION:
        return cal
    return None


def quantize_network(folded: nn.Module, calibration: Mapping[str, Any]) -> nn.Module:
    """An int8 copy of the batch-norm-folded SegNet-family network ``folded``, run once.

    The first forward packs the weights for oneDNN, so it is done here, on a
    small image, and its output checked.

    Raises :class:`QuantizationUnavailable` when int8 cannot run here, the
    calibration does not fit the network, or the int8 network fails.
    """
    from torch.ao.quantization import MinMaxObserver, convert

    if not int8_available():
        raise QuantizationUnavailable("this PyTorch has no oneDNN int8 engine on this CPU")
    if not quantizable(folded):
        raise QuantizationUnavailable("no int8 path for this network")
    observer = MinMaxObserver.with_args(dtype=torch.quint8, quant_min=0, quant_max=_QMAX)
    net = _prepared(folded, observer)
    ranges = calibration.get("ranges", {})
    observers = _observers(net)
    if set(observers) != set(ranges):
        raise QuantizationUnavailable("the int8 calibration was made for another network")
    for name, obs in observers.items():
        lo, hi = (float(v) for v in ranges[name])
        obs(torch.tensor([lo, hi]))
    first = next(m for m in folded.encoder[0] if isinstance(m, nn.Conv2d))
    probe = torch.zeros(1, first.in_channels, 64, 64).contiguous(memory_format=torch.channels_last)
    try:
        with _quiet(), _onednn_engine():
            qnet = Int8SegNet(convert(net))
            with torch.inference_mode():
                out = qnet(probe)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise QuantizationUnavailable(f"the int8 network failed: {exc}") from exc
    if out.shape[-2:] != probe.shape[-2:] or not bool(torch.isfinite(out).all()):
        raise QuantizationUnavailable("the int8 network gave unusable output")
    return qnet
