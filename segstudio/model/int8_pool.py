"""Max-pooling and unpooling on quantised (``quint8``) activations, without leaving int8.

PyTorch pools with indices and unpools only in floating point on the CPU, so
an int8 SegNet would dequantise every stage's output to float32, pool it,
unpool it and quantise it again: about a quarter of the int8 network's time
on an AVX2 CPU, for work that needs no arithmetic at all. Quantisation is
monotonic, so the maximum of a 2 x 2 window is the same element whether it is
taken of the floats or of their uint8 codes; these functions do it on the
codes, in the channels-last layout the int8 convolutions use:

- :func:`pool2x2` returns the window maxima (still ``quint8``, same scale) and,
  instead of PyTorch's flat int64 indices, the position of each maximum in its
  window as a uint8 ``0..3`` (row-major: top-left, top-right, bottom-left,
  bottom-right). Ties go to the first in that order, as ``max_pool2d`` does; odd
  sizes are pooled as ``ceil_mode=True`` pools them.
- :func:`unpool2x2` puts each value back at its position and the code of 0.0
  (the zero point) everywhere else, as ``max_unpool2d`` fills zeros.
- :func:`requantize` gives a tensor another scale and zero point (the next
  stage's input calibration), on the small pooled tensor.

The results equal ``quantize(max_pool2d / max_unpool2d(dequantize(x)))`` exactly
(tests check it, ties and odd sizes included).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = ["pool2x2", "requantize", "unpool2x2"]


def _codes_nhwc(x: torch.Tensor) -> torch.Tensor:
    """The uint8 codes of a quint8 NCHW tensor, as an (N, H, W, C) view."""
    return x.int_repr().permute(0, 2, 3, 1)


def _quantized(codes_nhwc: torch.Tensor, scale: float, zero_point: int) -> torch.Tensor:
    nchw = codes_nhwc.permute(0, 3, 1, 2)
    if not nchw.is_contiguous(memory_format=torch.channels_last):
        nchw = nchw.contiguous(memory_format=torch.channels_last)
    return torch._make_per_tensor_quantized_tensor(nchw, scale, zero_point)


def pool2x2(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """2 x 2 max-pooling with stride 2 (ceil mode) of a quint8 NCHW tensor.

    Returns the pooled quint8 tensor (channels-last, ``x``'s scale and zero
    point) and the window position of each maximum, uint8 ``(N, h, w, C)``.
    """
    t = _codes_nhwc(x)
    n, height, width, c = t.shape
    if height % 2 or width % 2:  # ceil mode: a padded code never beats a real one
        t = F.pad(t, (0, 0, 0, width % 2, 0, height % 2))
    h, w = (height + 1) // 2, (width + 1) // 2
    t = t.reshape(n, h, 2, w, 2, c)
    tl, tr, bl, br = t[:, :, 0, :, 0], t[:, :, 0, :, 1], t[:, :, 1, :, 0], t[:, :, 1, :, 1]
    top, bottom = torch.maximum(tl, tr), torch.maximum(bl, br)
    # the first maximum in row-major order: the top row wins ties with the bottom,
    # the left column with the right
    where = torch.where(top >= bottom, (tr > tl).to(torch.uint8), (br > bl).to(torch.uint8) + 2)
    return _quantized(torch.maximum(top, bottom), x.q_scale(), x.q_zero_point()), where


def unpool2x2(x: torch.Tensor, where: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`pool2x2`: an ``size``-sized quint8 tensor (channels-last)
    holding each of ``x``'s values at its window position ``where`` and 0.0
    (the zero point) elsewhere."""
    v = _codes_nhwc(x)
    n, h, w, c = v.shape
    zero = x.q_zero_point()
    out = torch.empty((n, h, 2, w, 2, c), dtype=torch.uint8)
    fill = torch.tensor(zero, dtype=torch.uint8)
    for k in range(4):
        dst = out[:, :, k // 2, :, k % 2]
        if zero == 0:  # the common case (ReLU outputs): a multiply, twice as fast
            torch.mul(v, where == k, out=dst)
        else:
            torch.where(where == k, v, fill, out=dst)
    height, width = size
    return _quantized(out.view(n, 2 * h, 2 * w, c)[:, :height, :width], x.q_scale(), zero)


def requantize(x: torch.Tensor, scale: float, zero_point: int) -> torch.Tensor:
    """``x`` (quint8) with another scale and zero point; itself when they match."""
    if x.q_scale() == scale and x.q_zero_point() == zero_point:
        return x
    return torch.quantize_per_tensor(x.dequantize(), scale, zero_point, torch.quint8)
