"""What every decoder hands back, and the checks they all share.

A decoder (:mod:`~segstudio.io.images.tiff` or :mod:`~segstudio.io.images.pillow`)
turns a file into a :class:`Decoded`: the file's own values before orientation,
plus a :class:`Kind` that says how its channels are to be read. The pixel limit
(:func:`check_pixels`, by default :func:`~segstudio.io.images.limits.pixel_limit`)
is checked from the header by every decoder before anything is decoded.
"""

from __future__ import annotations

import enum
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segstudio.core.errors import ImageTooLargeError, UnsupportedImageError
from segstudio.io.images.limits import pixel_limit, too_large

__all__ = ["DECODE_ERRORS", "Decoded", "Kind", "check_pixels"]

# Failures of Pillow, tifffile and zlib while parsing or decoding a file.
DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    struct.error,
    zlib.error,
)


class Kind(enum.Enum):
    """How the channels of a decoded ``raw`` array are to be read."""

    GRAY = "gray"
    GRAY_ALPHA = "gray+alpha"
    RGB = "rgb"
    RGBA = "rgba"  # four channels; the fourth is dropped from rgb
    TWO_CHANNEL = "two channels"
    PALETTE = "palette"
    BILEVEL = "bilevel"
    CONVERTED = "converted"  # exotic Pillow modes (CMYK, YCbCr, ...): rgb by Pillow


@dataclass(frozen=True, eq=False)
class Decoded:
    """A decoded file before orientation."""

    raw: np.ndarray
    kind: Kind
    mode: str
    bit_depth: int
    has_alpha: bool
    file_format: str  # "PNG", "JPEG", "MPO", "TIFF", "BMP", "WEBP"
    orientation: int = 1
    palette: np.ndarray | None = None  # 256 x 3 uint8, for Kind.PALETTE
    rgb: np.ndarray | None = None  # already made (fast JPEG path, converted modes)
    notes: tuple[str, ...] = ()  # what a reader should know, e.g. "frame 1 of 12 used"


def check_pixels(p: Path, width: int, height: int, max_pixels: int | None) -> None:
    """Refuse a zero-size image, or one of more than ``max_pixels`` pixels.

    ``max_pixels`` None means the default limit,
    :func:`~segstudio.io.images.limits.pixel_limit` (memory-derived, or set by
    ``SEGSTUDIO_MAX_PIXELS``); the message then says how to raise it.
    """
    if width <= 0 or height <= 0:
        raise UnsupportedImageError(p, f"image has zero size ({width} x {height})")
    limit = pixel_limit() if max_pixels is None else max_pixels
    if width * height > limit:
        raise ImageTooLargeError(
            p,
            "image is "
            + too_large(
                width,
                height,
                limit,
                given=max_pixels is not None,
                aside="it may be a decompression bomb",
            ),
        )
