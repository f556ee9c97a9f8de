"""Fast inference: device choice, reduced precision, batch-norm folding, seamless tiling.

The :class:`Predictor` turns an ``HxWx3`` uint8 image into a class map and a
per-pixel confidence (the top softmax probability). On the CPU it folds every
batch norm into the convolution before it, keeps activations channels-last,
and runs in bfloat16 where the processor has native bf16 units (AVX512-BF16
or AMX); on CUDA it uses fp16/bf16 autocast. On a CPU without bf16 units
(AVX2, most laptops) a SegNet-family model that carries an int8 calibration
(:mod:`segstudio.model.quantize`) runs its convolutions in int8 through
oneDNN; when that is not possible it falls back to float32. ``path`` names
what was chosen.

Images larger than a tile are predicted in overlapping tiles whose softmax
probabilities are blended with a linear ramp across each overlap, so tiles
leave no seams. Tiles are visited in raster order and only two carries are
kept between them (the right overlap of the previous tile, and the bottom
overlap of the previous row of tiles), so memory is ``O(tile^2 + overlap *
width)`` for the probabilities, however tall or wide the image.

A prediction can report its tiles as they are done (``progress(done, total)``)
and be cancelled (``cancelled()``, checked before every layer of the network,
so a cancel lands within one layer's compute, not one tile's). Two threads may
predict with one :class:`Predictor` at once: they take turns tile by tile, so
a small image never waits for all the tiles of a huge one.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from segstudio.core.errors import SegStudioError
from segstudio.core.labelset import UNLABELED
from segstudio.model.files import LoadedModel

log = logging.getLogger(__name__)

Precision = Literal["auto", "fp32", "bf16", "fp16", "int8"]


class DeviceError(SegStudioError):
    """A requested device or precision is not available on this machine."""


class PredictionCancelled(SegStudioError):  # noqa: N818 - a request, not a fault
    """A prediction stopped because its ``cancelled`` callback said so."""


#: ``progress(done, total)``: ``done`` of ``total`` tiles are predicted.
TileProgress = Callable[[int, int], None]


@dataclass(frozen=True)
class Prediction:
    """A predicted class map (uint8 HxW) and its confidence (float16 HxW, 0..1;
    None when the caller asked for none)."""

    labels: np.ndarray
    confidence: np.ndarray | None

    def sure(self, threshold: float) -> np.ndarray:
        """A copy of the labels, unlabeled (255) where the confidence is below
        ``threshold``: the answers replay learns from."""
        if self.confidence is None:
            raise SegStudioError("this prediction was made without its confidence")
        labels = self.labels.copy()
        labels[self.confidence.astype(np.float32) < threshold] = UNLABELED
        return labels


def select_device(requested: str | None = "auto") -> torch.device:
    """CUDA, then Apple MPS, then the CPU; or exactly what was requested."""
    req = (requested or "auto").lower()
    if req == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(req)
    except RuntimeError as exc:
        raise DeviceError(
            f"unknown device {requested!r}; use auto, cpu, cuda, cuda:N or mps"
        ) from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError("CUDA was requested but no CUDA GPU is available")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(f"{req}: only {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise DeviceError("MPS was requested but is not available")
    elif dev.type != "cpu":
        raise DeviceError(f"unsupported device {requested!r}; use auto, cpu, cuda, cuda:N or mps")
    return dev


#: oneDNN instruction-set caps (``ONEDNN_MAX_CPU_ISA``) below which bf16 is emulated.
_NO_BF16_ISAS = frozenset(
    {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI"}
)


def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bf16 in hardware (AVX512-BF16 or AMX) and oneDNN may
    use it (``ONEDNN_MAX_CPU_ISA`` set to an older instruction set rules it out, as
    on a CPU without those units)."""
    if os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper() in _NO_BF16_ISAS:
        return False
    cpu = getattr(torch, "cpu", None)
    try:
        return bool(cpu._is_avx512_bf16_supported() or cpu._is_amx_tile_supported())
    except AttributeError:  # an older torch without the probes
        return False


def resolve_precision(device: torch.device, precision: Precision = "auto") -> torch.dtype:
    """The compute dtype for ``device``: bf16/fp16 where fast, else fp32.

    ``"int8"`` (CPU only) answers float32: the dtype the int8 network takes
    and returns (see :class:`Predictor`).
    """
    if precision == "fp32":
        return torch.float32
    if precision == "int8":
        if device.type != "cpu":
            raise DeviceError("int8 inference runs on the CPU only")
        return torch.float32
    if device.type == "cuda":
        if precision == "fp16":
            return torch.float16
        if precision == "bf16" or torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float16
    if device.type == "mps":
        return torch.float16 if precision in ("fp16", "auto") else torch.float32
    # CPU
    if precision == "fp16":
        raise DeviceError("fp16 is not supported on the CPU; use bf16 or fp32")
    if precision == "bf16":
        return torch.bfloat16
    return torch.bfloat16 if cpu_has_native_bf16() else torch.float32


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """Fold each eval-mode BatchNorm2d into the (transposed) conv right before it (in place).

    Works on ``nn.Sequential`` containers, which is how every SegStudio
    architecture lays out conv -> BN -> ReLU.
    """
    for name, child in list(module.named_children()):
        if isinstance(child, nn.Sequential):
            layers = list(child)
            folded: list[nn.Module] = []
            i = 0
            while i < len(layers):
                a = layers[i]
                b = layers[i + 1] if i + 1 < len(layers) else None
                if isinstance(a, nn.Conv2d | nn.ConvTranspose2d) and isinstance(b, nn.BatchNorm2d):
                    folded.append(fuse_conv_bn_eval(a, b, isinstance(a, nn.ConvTranspose2d)))
                    i += 2
                else:
                    folded.append(fold_batchnorm(a))
                    i += 1
            setattr(module, name, nn.Sequential(*folded))
        else:
            fold_batchnorm(child)
    return module


def _split(length: int, tile: int, overlap: int, align: int = 1) -> list[tuple[int, int]]:
    """Windows of at most ``tile`` covering ``[0, length)``, each overlapping the
    next by at least ``overlap``, all starting at multiples of ``align``.

    Aligned starts keep every tile's pooling grid on the whole image's grid,
    so a tile sees the same pooling windows as the whole image would. With
    ``overlap`` and ``align`` at most ``tile / 4`` a window never reaches past
    the one after its neighbour, so every pixel lies in at most two windows per
    axis, which is what :func:`stitch_tiles` relies on. The last window is what
    remains, at least ``tile - step`` (>= ``overlap``) pixels plus one.
    """
    if length <= tile:
        return [(0, length)]
    step = (tile - overlap) // align * align
    windows = []
    start = 0
    while start + tile < length:
        windows.append((start, start + tile))
        start += step
    windows.append((start, length))
    return windows


def _ramp(size: int, lead: int, trail: int) -> np.ndarray:
    """1-D blending weights: rise over ``lead`` pixels, fall over ``trail``."""
    w = np.ones(size, np.float32)
    if lead > 0:
        w[:lead] = np.minimum(w[:lead], (np.arange(lead, dtype=np.float32) + 0.5) / lead)
    if trail > 0:
        w[size - trail :] = np.minimum(
            w[size - trail :], (np.arange(trail, 0, -1, dtype=np.float32) - 0.5) / trail
        )
    return w


TileFn = Callable[[int, int, int, int], torch.Tensor]


def _ramp_t(size: int, lead: int, trail: int) -> torch.Tensor:
    return torch.from_numpy(_ramp(size, lead, trail))


def _finish(
    sums: torch.Tensor, num_classes: int, labels: torch.Tensor, conf: torch.Tensor | None
) -> None:
    """Class and confidence (unless None) of pixels whose weighted sums are complete."""
    probs = sums[:num_classes]
    top, idx = probs.max(dim=0)
    labels.copy_(idx)
    if conf is not None:
        conf.copy_(top / probs.sum(dim=0))


def _weighted(
    logits: torch.Tensor, wy: torch.Tensor, wx: torch.Tensor, ys: slice, xs: slice
) -> torch.Tensor:
    """Probabilities times weight, and the weight, of a strip ``[:, ys, xs]`` of a tile."""
    wgt = wy[ys, None] * wx[None, xs]
    probs = torch.softmax(logits[:, ys, xs], dim=0).mul_(wgt)
    return torch.cat((probs, wgt[None]), dim=0)


def _direct(logits: torch.Tensor, labels: torch.Tensor, conf: torch.Tensor | None) -> None:
    """Class and confidence (unless None) of pixels that only one tile covers, from its logits."""
    top, idx = logits.max(dim=0)
    labels.copy_(idx)
    if conf is not None:  # top softmax probability = 1 / sum(exp(logit - max logit))
        conf.copy_(torch.exp(logits - top).sum(dim=0).reciprocal())


def stitch_tiles(
    height: int,
    width: int,
    num_classes: int,
    tile: int,
    overlap: int,
    predict_tile: TileFn,
    align: int = 1,
    confidence: bool = True,
) -> Prediction:
    """Predict an image tile by tile and blend the tiles' probabilities.

    ``predict_tile(y0, y1, x0, x1)`` returns float32 logits, a tensor of shape
    ``(num_classes, y1 - y0, x1 - x0)``. A pixel that one tile covers takes
    that tile's class and top softmax probability; a pixel in an overlap takes
    the weight-normalised sum of the covering tiles' probabilities, the
    weights ramping linearly across the overlap, so neighbouring tiles fade
    into each other. Only the overlap strips are blended (and kept between
    tiles: the right strip of the previous tile, the bottom strip of the
    previous row of tiles); all of it runs in torch, on every thread. Without
    ``confidence`` the prediction's confidence is None (about 3 % faster).
    """
    if not 0 <= overlap * 4 <= tile or not 1 <= align * 4 <= tile:
        raise ValueError(f"overlap ({overlap}) and align ({align}) must be <= tile / 4 ({tile})")
    labels = np.empty((height, width), np.uint8)
    conf = np.empty((height, width), np.float16) if confidence else None
    lab_t = torch.from_numpy(labels)
    conf_t = None if conf is None else torch.from_numpy(conf)

    def out(ys: slice, xs: slice) -> tuple[torch.Tensor, torch.Tensor | None]:
        return lab_t[ys, xs], None if conf_t is None else conf_t[ys, xs]

    rows, cols = _split(height, tile, overlap, align), _split(width, tile, overlap, align)
    for axis in (rows, cols):
        for (_, a1), (b0, _) in zip(axis, axis[2:], strict=False):
            assert b0 >= a1, "a window overlaps the one after its neighbour"
    c = num_classes
    top: torch.Tensor | None = None  # weighted sums of the rows shared with the last tile row
    top_y0 = 0
    for r, (y0, y1) in enumerate(rows):
        next_y0 = rows[r + 1][0] if r + 1 < len(rows) else y1
        prev_y1 = rows[r - 1][1] if r > 0 else y0
        h, ly, ty = y1 - y0, prev_y1 - y0, y1 - next_y0  # rows shared above and below
        wy = _ramp_t(h, ly, ty)
        new_top = torch.from_numpy(np.zeros((c + 1, ty, width), np.float32)) if ty > 0 else None
        left: torch.Tensor | None = None  # weighted sums of the columns shared with the last tile
        for k, (x0, x1) in enumerate(cols):
            next_x0 = cols[k + 1][0] if k + 1 < len(cols) else x1
            prev_x1 = cols[k - 1][1] if k > 0 else x0
            w, lx, tx = x1 - x0, prev_x1 - x0, x1 - next_x0
            wx = _ramp_t(w, lx, tx)
            logits = predict_tile(y0, y1, x0, x1).float()

            _direct(
                logits[:, ly : h - ty, lx : w - tx],
                *out(slice(y0 + ly, next_y0), slice(x0 + lx, next_x0)),
            )
            handed: list[torch.Tensor] = []  # the right strip, top to bottom, for the next tile
            if ly > 0:  # rows the previous tile row covered too
                band = _weighted(logits, wy, wx, slice(0, ly), slice(0, w))
                if left is not None:  # already holds the top carry for its columns
                    band[:, :, :lx] += left[:, :ly]
                assert top is not None
                band[:, :, lx:] += top[:, y0 - top_y0 : prev_y1 - top_y0, prev_x1:x1]
                _finish(
                    band[:, :, : w - tx],
                    c,
                    *out(slice(y0, prev_y1), slice(x0, next_x0)),
                )
                handed.append(band[:, :, w - tx :])
            if lx > 0 and h - ty > ly:  # columns the previous tile covered too
                assert left is not None
                band = (
                    _weighted(logits, wy, wx, slice(ly, h - ty), slice(0, lx))
                    + left[:, ly : h - ty]
                )
                _finish(
                    band,
                    c,
                    *out(slice(y0 + ly, next_y0), slice(x0, prev_x1)),
                )
            if tx > 0:
                handed.append(_weighted(logits, wy, wx, slice(ly, h - ty), slice(w - tx, w)))
            if ty > 0:  # rows the next tile row covers too: handed on
                assert new_top is not None
                band = _weighted(logits, wy, wx, slice(h - ty, h), slice(0, w))
                if left is not None:
                    band[:, :, :lx] += left[:, h - ty :]
                new_top[:, :, x0:next_x0] = band[:, :, : w - tx]
                handed.append(band[:, :, w - tx :])
            left = torch.cat(handed, dim=1) if tx > 0 else None
        top, top_y0 = new_top, next_y0
    return Prediction(labels, conf)


class Predictor:
    """Run a loaded model on images, as fast as the device allows.

    Parameters
    ----------
    model
        A loaded model; its network is copied, so the caller's stays untouched.
    device
        ``"auto"`` (CUDA, then MPS, then CPU), or ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``.
    precision
        ``"auto"`` picks bf16 on CPUs with bf16 hardware and on CUDA GPUs that
        support it, fp16 on other GPUs; on other CPUs int8 (oneDNN) when the
        model is SegNet-family and carries an int8 calibration, else fp32.
        ``"int8"`` insists on int8 (:class:`DeviceError` when it cannot run).
    tile
        Images with a side longer than this are predicted in tiles of at most
        ``tile x tile`` pixels.
    overlap
        Overlap between neighbouring tiles, blended without seams (default
        ``tile // 8``; at most ``tile // 4``).
    """

    def __init__(
        self,
        model: LoadedModel,
        *,
        device: str | None = "auto",
        precision: Precision = "auto",
        tile: int = 1024,
        overlap: int | None = None,
    ) -> None:
        overlap = tile // 8 if overlap is None else overlap
        # tiles start on the network's pooling grid (32 pixels for SegNet)
        self.align = int(getattr(model.network, "alignment", 1))
        if tile < max(64, 4 * self.align):
            raise SegStudioError(
                f"tile size must be at least {max(64, 4 * self.align)} pixels, got {tile}"
            )
        if not 0 <= overlap <= tile // 4:
            raise SegStudioError(
                f"tile overlap must be in 0..{tile // 4} for tile {tile}, got {overlap}"
            )
        self.info = model.info
        self.device = select_device(device)
        self.dtype = resolve_precision(self.device, precision)
        self.tile = tile
        self.overlap = overlap
        self.num_classes = model.info.labelset.num_classes
        net = fold_batchnorm(copy.deepcopy(model.network).eval())
        net = net.to(self.device).to(memory_format=torch.channels_last)
        # On the CPU, bf16 weights beat autocast (no per-call weight casts); on
        # GPUs autocast keeps the numerically touchy ops in fp32.
        self._autocast = self.device.type != "cpu" and self.dtype != torch.float32
        if self.device.type == "cpu":
            net = net.to(self.dtype)
        #: what runs: "int8-onednn", "bf16", "fp16" or "fp32" (see ``precision``)
        self.path = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(self.dtype, "fp32")
        if self.device.type == "cpu" and self.dtype == torch.float32 and precision != "fp32":
            qnet = self._int8_network(model, net, required=precision == "int8")
            if qnet is not None:
                net, self.path = qnet, "int8-onednn"
        self.network = net
        norm = model.info.normalization
        mean = torch.tensor(norm.mean, dtype=torch.float32, device=self.device)
        std = torch.tensor(norm.std, dtype=torch.float32, device=self.device)
        self._scale = (1.0 / (255.0 * std)).view(1, -1, 1, 1)
        self._shift = (-mean / std).view(1, -1, 1, 1)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        # one forward at a time; callers take turns by tile (see the module docstring)
        self._forward_lock = threading.Lock()
        self._call = threading.local()  # the running prediction's cancel check, per thread
        for module in net.modules():
            if next(module.children(), None) is None:  # a layer that computes
                module.register_forward_pre_hook(self._check_cancel)

    @staticmethod
    def _int8_network(model: LoadedModel, folded: nn.Module, *, required: bool) -> nn.Module | None:
        """The int8 version of ``folded``, or None (then float32 runs) when it cannot be made."""
        from segstudio.model.quantize import (
            QuantizationUnavailable,
            calibration_of,
            quantize_network,
        )

        try:
            cal = calibration_of(model)
            if cal is None:
                raise QuantizationUnavailable(
                    "the model has no int8 calibration (add one with `segstudio model convert "
                    "MODEL --calibrate IMAGE_FOLDER --out NEW_MODEL`)"
                )
            qnet = quantize_network(folded, cal)  # runs it once: a failure falls back
        except (QuantizationUnavailable, RuntimeError, ImportError) as exc:
            if required:
                raise DeviceError(f"int8 inference is not available: {exc}") from exc
            log.info("int8 inference not used (%s); running float32", exc)
            return None
        return qnet

    def _check_cancel(self, *_args: object) -> None:
        cancelled = getattr(self._call, "cancelled", None)
        if cancelled is not None and cancelled():
            raise PredictionCancelled("prediction cancelled")

    def tile_count(self, height: int, width: int) -> int:
        """How many tiles an image of ``height x width`` is predicted in (1: whole)."""
        if height <= self.tile and width <= self.tile:
            return 1
        rows = _split(height, self.tile, self.overlap, self.align)
        return len(rows) * len(_split(width, self.tile, self.overlap, self.align))

    def __repr__(self) -> str:
        return (
            f"Predictor({self.info.arch.name}, device={self.device}, path={self.path}, "
            f"tile={self.tile})"
        )

    @torch.inference_mode()
    def _logits(self, rgb: np.ndarray) -> torch.Tensor:
        """float32 logits (1, C, h, w) on the device for an h x w x 3 uint8 crop."""
        x = torch.from_numpy(np.ascontiguousarray(rgb)).to(self.device, non_blocking=True)
        x = x.permute(2, 0, 1).unsqueeze(0).float() * self._scale + self._shift
        x = x.contiguous(memory_format=torch.channels_last)
        while not self._forward_lock.acquire(timeout=0.05):  # waiting for another caller's
            self._check_cancel()  # tile can be cancelled too
        try:
            if self._autocast:
                with torch.autocast(self.device.type, dtype=self.dtype):
                    out = self.network(x)
            else:
                out = self.network(x.to(self.dtype))
            return out.float()
        finally:
            self._forward_lock.release()

    def _check(self, rgb: np.ndarray) -> None:
        if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3:
            raise SegStudioError("the predictor takes an H x W x 3 uint8 RGB image")
        expected = len(self.info.normalization.mean)
        if rgb.shape[2] != expected:
            raise SegStudioError(f"the model takes {expected}-channel images, got {rgb.shape[2]}")
        if rgb.shape[0] < 1 or rgb.shape[1] < 1:
            raise SegStudioError("cannot predict an empty image")

    @torch.inference_mode()
    def predict(
        self,
        rgb: np.ndarray,
        *,
        progress: TileProgress | None = None,
        cancelled: Callable[[], bool] | None = None,
        confidence: bool = True,
    ) -> Prediction:
        """Class map and confidence for one ``H x W x 3`` uint8 image.

        ``progress(done, total)`` is called before the first tile and after each
        one (a small image is one tile); ``cancelled()`` is checked before every
        layer, and raises :class:`PredictionCancelled` when it returns True.
        ``confidence=False`` skips the confidence map (it is None then).
        """
        self._check(rgb)
        h, w = rgb.shape[:2]
        total = self.tile_count(h, w)
        done = 0

        def report() -> None:
            if progress is not None:
                progress(done, total)

        self._call.cancelled = cancelled
        try:
            self._check_cancel()
            report()
            if total == 1:
                logits = self._logits(rgb)[0]
                top, labels = logits.max(dim=0)
                conf = None
                if confidence:  # top softmax probability = 1 / sum(exp(logit - max logit))
                    conf = torch.exp(logits - top).sum(dim=0).reciprocal()
                    conf = conf.to(torch.float16).cpu().numpy()
                done = 1
                report()
                return Prediction(labels.to(torch.uint8).cpu().numpy(), conf)

            def tile_logits(y0: int, y1: int, x0: int, x1: int) -> torch.Tensor:
                nonlocal done
                self._check_cancel()
                logits = self._logits(rgb[y0:y1, x0:x1])[0].cpu()
                done += 1
                report()
                return logits

            return stitch_tiles(
                h, w, self.num_classes, self.tile, self.overlap, tile_logits, self.align, confidence
            )
        finally:
            self._call.cancelled = None

    def predict_many(self, images: Iterator[np.ndarray]) -> Iterator[Prediction]:
        """Predict a stream of images, one at a time (bounded memory)."""
        for rgb in images:
            yield self.predict(rgb)
