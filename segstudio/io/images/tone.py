"""Tone mapping: any decoded file to the ``H x W x 3`` ``uint8`` display/model array.

How each kind of file becomes ``rgb``
-------------------------------------
- 8-bit RGB: as is (``raw`` is the same array).
- Grayscale (L, 16-bit, 32-bit int, float): replicated to three channels.
- RGBA, LA: the alpha channel is dropped from ``rgb`` (kept in ``raw``).
- Palette (P, with or without transparency): the palette colours; ``raw``
  holds the palette indices.
- 1-bit: 0 and 255; ``raw`` is a ``bool`` array.
- 16-bit, 32-bit int and float data: a robust contrast stretch, the 0.5 and
  99.5 percentiles (taken on a strided subsample) map to 0 and 255; NaN and
  infinity map to 0, a constant image to all zeros. RGB(A) data is stretched
  with one range for all colour channels, so colours keep their balance.
- Two-channel TIFF (not marked as gray + alpha): a false-colour composite,
  channel 0 in red, channel 1 in green, blue zero, each channel stretched on
  its own (the usual red/green view of two-channel microscopy).
- Four-channel TIFF: the first three channels; ``has_alpha`` is true when the
  file marks the fourth as alpha.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from segstudio.io.images.decoded import Decoded, Kind

__all__ = ["to_rgb"]

# The contrast stretch takes its percentiles on about this many pixels.
_SAMPLE_PIXELS = 1 << 18


def to_rgb(raw: np.ndarray, decoded: Decoded) -> np.ndarray:
    """Make the H x W x 3 uint8 display/model array from oriented ``raw``."""
    kind = decoded.kind
    if kind is Kind.PALETTE:
        assert decoded.palette is not None
        return decoded.palette[raw]
    if kind is Kind.BILEVEL:
        return _gray_to_rgb(raw.astype(np.uint8) * np.uint8(255))
    if kind is Kind.GRAY:
        return _gray_to_rgb(_to_uint8(raw))
    if kind is Kind.GRAY_ALPHA:
        return _gray_to_rgb(_to_uint8(raw[..., 0]))
    if kind is Kind.RGB and raw.dtype == np.uint8:
        return raw
    if kind in (Kind.RGB, Kind.RGBA):
        return np.ascontiguousarray(_to_uint8(raw[..., :3]))
    if kind is Kind.TWO_CHANNEL:
        rgb = np.zeros((*raw.shape[:2], 3), np.uint8)
        rgb[..., 0] = _to_uint8(raw[..., 0])
        rgb[..., 1] = _to_uint8(raw[..., 1])
        return rgb
    raise AssertionError(f"no rgb for {kind}")  # CONVERTED always carries its rgb


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(gray), cv2.COLOR_GRAY2RGB)


def _to_uint8(a: np.ndarray) -> np.ndarray:
    """8-bit data as is, anything else through the robust contrast stretch."""
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * np.uint8(255)
    return _stretch(a)


def _robust_range(a: np.ndarray) -> tuple[float, float] | None:
    """(low, high) for the stretch, or None for a constant (or all-NaN) image."""
    step = max(1, math.isqrt(a.shape[0] * a.shape[1] // _SAMPLE_PIXELS))
    sample = a[::step, ::step]
    floating = a.dtype.kind == "f"
    if floating:
        sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return None
    low, high = (float(v) for v in np.percentile(sample, (0.5, 99.5)))
    if high > low:
        return low, high
    # Percentiles coincide (few bright pixels on a flat ground, say): use the full
    # finite range of the whole image.
    values = a[np.isfinite(a)] if floating else a
    low, high = float(values.min()), float(values.max())
    return (low, high) if high > low else None


def _stretch(a: np.ndarray) -> np.ndarray:
    """Map [low, high] of ``a`` linearly onto 0..255 (rounded, clipped)."""
    bounds = _robust_range(a)
    if bounds is None:
        return np.zeros(a.shape, np.uint8)
    low, high = bounds
    scale = 255.0 / (high - low)
    if a.dtype == np.uint16:  # one lookup per pixel instead of float arithmetic
        levels = (np.arange(65536, dtype=np.float64) - low) * scale
        lut = (np.clip(levels, 0.0, 255.0) + 0.5).astype(np.uint8)
        return lut[a]
    out = np.subtract(a, low, dtype=np.float32)
    out *= np.float32(scale)
    np.clip(out, 0.0, 255.0, out=out)
    out += np.float32(0.5)
    if a.dtype.kind == "f":
        out[~np.isfinite(a)] = 0.0  # NaN and infinity count as the minimum
    return out.astype(np.uint8)
