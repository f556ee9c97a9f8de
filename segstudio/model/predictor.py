"""Fast inference: device choice, reduced precision, batch-norm folding, seamless tiling.

The :class:`Predictor` turns an ``HxWx3`` uint8 image into a class map and a
per-pixel confidence (the top softmax probability). On the CPU it folds every
batch norm into the convolution before it and keeps activations
channels-last; on CUDA it uses fp16/bf16 autocast. A CPU with AMX runs
bfloat16. On other CPUs (AVX2 only, as on most laptops, or AVX512-BF16
without AMX) a SegNet-family model that carries an int8 calibration
(:mod:`segstudio.model.quantize`) runs its convolutions in int8 through
oneDNN; when that is not possible it falls back to bfloat16 where the CPU
has bf16 units, else float32. ``path`` names what was chosen.

Images larger than a tile are predicted in overlapping tiles blended without
seams (:mod:`segstudio.model.tiling`), in memory ``O(tile^2 + overlap *
width)`` for the probabilities, however tall or wide the image. With
``tile_workers`` > 1 several tiles are predicted at once, each on its share of
the threads: on a CPU this keeps every core busy through the network's
single-threaded stretches (the command line's choice).

A prediction can report its tiles as they are done (``progress(done, total)``)
and be cancelled (``cancelled()``, checked before every layer of the network,
so a cancel lands within one layer's compute, not one tile's). Two threads may
predict with one :class:`Predictor` at once: they take turns tile by tile, so
a small image never waits for all the tiles of a huge one (unless the huge one
is predicted with several tile workers: that keeps the network to itself).
"""

from __future__ import annotations

import copy
import logging
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from segstudio.core.errors import SegStudioError
from segstudio.model.files import LoadedModel
from segstudio.model.tiling import Prediction, RowSource, stitch_tiles, tile_windows

__all__ = [
    "DeviceError",
    "Precision",
    "Prediction",
    "PredictionCancelled",
    "Predictor",
    "RowSource",
    "TileProgress",
    "cpu_has_amx",
    "cpu_has_native_bf16",
    "fold_batchnorm",
    "resolve_precision",
    "select_device",
]

log = logging.getLogger(__name__)

Precision = Literal["auto", "fp32", "bf16", "fp16", "int8"]


class DeviceError(SegStudioError):
    """A requested device or precision is not available on this machine."""


class PredictionCancelled(SegStudioError):  # noqa: N818 - a request, not a fault
    """A prediction stopped because its ``cancelled`` callback said so."""


#: ``progress(done, total)``: ``done`` of ``total`` tiles are predicted.
TileProgress = Callable[[int, int], None]


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


def cpu_has_amx() -> bool:
    """True when the CPU has AMX tiles and oneDNN may use them (no ``ONEDNN_MAX_CPU_ISA``
    cap below ``AVX512_CORE_AMX``)."""
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    if cap and "AMX" not in cap and cap != "ALL":
        return False
    try:
        return bool(torch.cpu._is_amx_tile_supported())
    except AttributeError:  # an older torch without the probe
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


def _crops(
    rgb: np.ndarray | RowSource, windows: list[tuple[int, int, int, int]]
) -> Iterator[np.ndarray]:
    """The pixels of each window, in order; from a row source, one band per row of tiles."""
    band: np.ndarray | None = None
    rows = (-1, -1)
    for y0, y1, x0, x1 in windows:
        if isinstance(rgb, np.ndarray):
            yield rgb[y0:y1, x0:x1]
            continue
        if (y0, y1) != rows:
            band, rows = None, (y0, y1)  # the last band is let go before the next is read
            band = rgb.rows(y0, y1)
        assert band is not None
        yield band[:, x0:x1]


class Predictor:
    """Run a loaded model on images, as fast as the device allows.

    Parameters
    ----------
    model
        A loaded model; its network is copied, so the caller's stays untouched.
    device
        ``"auto"`` (CUDA, then MPS, then CPU), or ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``.
    precision
        ``"auto"`` picks bf16 on CPUs with AMX and on CUDA GPUs that support it,
        fp16 on other GPUs; on other CPUs int8 (oneDNN) when the model is
        SegNet-family and carries an int8 calibration, else bf16 where the CPU
        has bf16 units (AVX512-BF16), else fp32.
        ``"int8"`` insists on int8 (:class:`DeviceError` when it cannot run).
    tile
        Images with a side longer than this are predicted in tiles of at most
        ``tile x tile`` pixels.
    overlap
        Overlap between neighbouring tiles, blended without seams (default
        ``tile // 8``; at most ``tile // 4``).
    tile_workers
        On the CPU, how many tiles of an image are predicted at once, each with
        ``1 / tile_workers`` of the torch threads (1: one tile at a time, on
        all of them). Same result either way.
    """

    def __init__(
        self,
        model: LoadedModel,
        *,
        device: str | None = "auto",
        precision: Precision = "auto",
        tile: int = 1024,
        overlap: int | None = None,
        tile_workers: int = 1,
    ) -> None:
        overlap = tile // 8 if overlap is None else overlap
        if tile_workers < 1:
            raise SegStudioError(f"tile_workers must be at least 1, got {tile_workers}")
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
        self.tile_workers = tile_workers if self.device.type == "cpu" else 1
        self.num_classes = model.info.labelset.num_classes
        net = fold_batchnorm(copy.deepcopy(model.network).eval())
        net = net.to(self.device).to(memory_format=torch.channels_last)
        # On the CPU, bf16 weights beat autocast (no per-call weight casts); on
        # GPUs autocast keeps the numerically touchy ops in fp32.
        self._autocast = self.device.type != "cpu" and self.dtype != torch.float32
        #: what runs: "int8-onednn", "bf16", "fp16" or "fp32" (see ``precision``)
        self.path = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(self.dtype, "fp32")
        qnet = None
        # int8 where bf16 has no hardware, and where bf16 has no AMX to run on
        # (AVX512-BF16 alone: int8 is 1.1-1.25x faster there, bench_bundled)
        if (
            self.device.type == "cpu"
            and precision in ("auto", "int8")
            and (self.dtype == torch.float32 or not cpu_has_amx())
        ):
            qnet = self._int8_network(model, net, required=precision == "int8")
        if qnet is not None:
            net, self.path, self.dtype = qnet, "int8-onednn", torch.float32
        elif self.device.type == "cpu":
            net = net.to(self.dtype)
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
        """The int8 version of ``folded``, or None (then bf16 or float32 runs) when it
        cannot be made."""
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
            log.info("int8 inference not used (%s)", exc)
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
        return len(tile_windows(height, width, self.tile, self.overlap, self.align))

    def __repr__(self) -> str:
        return (
            f"Predictor({self.info.arch.name}, device={self.device}, path={self.path}, "
            f"tile={self.tile})"
        )

    @torch.inference_mode()
    def _forward(self, rgb: np.ndarray) -> torch.Tensor:
        """float32 logits (1, C, h, w) on the device for an h x w x 3 uint8 crop
        (the caller holds the forward lock)."""
        x = torch.from_numpy(np.ascontiguousarray(rgb)).to(self.device, non_blocking=True)
        x = x.permute(2, 0, 1).unsqueeze(0).float() * self._scale + self._shift
        x = x.contiguous(memory_format=torch.channels_last)
        if self._autocast:
            with torch.autocast(self.device.type, dtype=self.dtype):
                out = self.network(x)
        else:
            out = self.network(x.to(self.dtype))
        return out.float()

    def _acquire(self) -> None:
        """Wait for the network; a cancel while waiting counts too."""
        while not self._forward_lock.acquire(timeout=0.05):
            self._check_cancel()

    def _logits(self, rgb: np.ndarray) -> torch.Tensor:
        """:meth:`_forward`, taking its turn with other callers."""
        self._acquire()
        try:
            return self._forward(rgb)
        finally:
            self._forward_lock.release()

    def _tiles_at_once(self, crops: Iterator[np.ndarray], count: int) -> Iterator[torch.Tensor]:
        """The logits of the ``count`` tiles ``crops``, in order, ``tile_workers`` at once.

        Each worker thread runs its tiles on its share of the torch threads (a
        thread's own setting; the process-wide one is restored as soon as the
        workers have theirs). The network is held for the whole image.
        """
        workers = min(self.tile_workers, count)
        threads = torch.get_num_threads()
        started = threading.Barrier(workers + 1, timeout=60)
        cancelled = self._call.cancelled

        def start_worker() -> None:
            # a thread's first parallel op copies the process-wide count into it:
            # have that happen now, so that the count set next is the one it keeps
            torch.get_num_threads()
            torch.set_num_threads(max(1, threads // workers))
            started.wait()

        def run(crop: np.ndarray) -> torch.Tensor:
            self._call.cancelled = cancelled
            try:
                return self._forward(crop)[0].cpu()
            finally:
                self._call.cancelled = None

        self._acquire()
        try:
            with ThreadPoolExecutor(workers, initializer=start_worker) as pool:
                try:
                    for _ in range(workers):  # one thread each: they wait for the others
                        pool.submit(lambda: None)
                    started.wait()
                except BaseException:
                    started.abort()  # no worker waits for ever
                    raise
                finally:  # the process-wide count, whatever the workers set
                    torch.set_num_threads(threads)
                pending: list[Future[torch.Tensor]] = []
                try:
                    for crop in crops:
                        pending.append(pool.submit(run, crop))
                        if len(pending) == workers:
                            yield pending.pop(0).result()
                    while pending:
                        yield pending.pop(0).result()
                finally:
                    for job in pending:  # stopped early: the rest of the tiles are not needed
                        job.cancel()
        finally:
            self._forward_lock.release()

    def _check(self, rgb: np.ndarray | RowSource) -> None:
        if isinstance(rgb, np.ndarray):
            if rgb.dtype != np.uint8 or rgb.ndim != 3:
                raise SegStudioError("the predictor takes an H x W x 3 uint8 RGB image")
        elif not (callable(getattr(rgb, "rows", None)) and len(getattr(rgb, "shape", ())) == 3):
            raise SegStudioError("the predictor takes an H x W x 3 uint8 RGB image or bands of one")
        expected = len(self.info.normalization.mean)
        if rgb.shape[2] != expected:
            raise SegStudioError(f"the model takes {expected}-channel images, got {rgb.shape[2]}")
        if rgb.shape[0] < 1 or rgb.shape[1] < 1:
            raise SegStudioError("cannot predict an empty image")

    @torch.inference_mode()
    def predict(
        self,
        rgb: np.ndarray | RowSource,
        *,
        progress: TileProgress | None = None,
        cancelled: Callable[[], bool] | None = None,
        confidence: bool = True,
    ) -> Prediction:
        """Class map and confidence for one ``H x W x 3`` uint8 image.

        ``rgb`` may also be a :class:`~segstudio.model.tiling.RowSource`: a large
        image is then read one band of tile rows at a time, never whole.
        ``progress(done, total)`` is called before the first tile and after each
        one (a small image is one tile); ``cancelled()`` is checked before every
        layer, and raises :class:`PredictionCancelled` when it returns True
        (with ``tile_workers`` > 1, from the worker threads, maybe at once).
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
                logits = self._logits(rgb if isinstance(rgb, np.ndarray) else rgb.rows(0, h))[0]
                top, labels = logits.max(dim=0)
                conf = None
                if confidence:  # top softmax probability = 1 / sum(exp(logit - max logit))
                    conf = torch.exp(logits - top).sum(dim=0).reciprocal()
                    conf = conf.to(torch.float16).cpu().numpy()
                done = 1
                report()
                return Prediction(labels.to(torch.uint8).cpu().numpy(), conf)

            windows = tile_windows(h, w, self.tile, self.overlap, self.align)
            crops = _crops(rgb, windows)
            at_once = None
            if self.tile_workers > 1:
                at_once = self._tiles_at_once(crops, len(windows))

            def tile_logits(y0: int, y1: int, x0: int, x1: int) -> torch.Tensor:
                nonlocal done
                assert windows[done] == (y0, y1, x0, x1), "tiles asked out of order"
                self._check_cancel()
                logits = self._logits(next(crops))[0].cpu() if at_once is None else next(at_once)
                done += 1
                report()
                return logits

            try:
                return stitch_tiles(
                    h, w, self.num_classes, self.tile, self.overlap, tile_logits, self.align,
                    confidence,
                )  # fmt: skip
            finally:
                if at_once is not None:
                    at_once.close()  # joins the workers
        finally:
            self._call.cancelled = None

    def predict_many(self, images: Iterator[np.ndarray]) -> Iterator[Prediction]:
        """Predict a stream of images, one at a time (bounded memory)."""
        for rgb in images:
            yield self.predict(rgb)
