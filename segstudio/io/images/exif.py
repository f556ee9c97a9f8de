"""Orientation: reading the EXIF (or TIFF) orientation tag and applying it.

Reading is best effort, as in ``PIL.ImageOps.exif_transpose``: a broken EXIF
block is logged and ignored, so it cannot make an otherwise good image
unreadable. :func:`apply_orientation` turns stored pixels upright with views,
for images and label maps alike, so a map lines up with its image.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image

from segstudio.io.images.decoded import DECODE_ERRORS

__all__ = [
    "ORIENTATION_TAG",
    "apply_orientation",
    "exif_orientation",
    "orientation_from_exif_bytes",
    "valid_orientation",
]

_log = logging.getLogger(__name__)

ORIENTATION_TAG = int(ExifTags.Base.Orientation)

# What a broken EXIF block raises: any decode failure, or a TypeError from a bad tag value.
_EXIF_ERRORS: tuple[type[BaseException], ...] = (*DECODE_ERRORS, TypeError)


def valid_orientation(value: object) -> int:
    """``value`` when it is an orientation (1..8), else 1 (upright)."""
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def exif_orientation(p: Path, im: Image.Image) -> int:
    """The orientation in an opened Pillow image's EXIF data (1 when unreadable)."""
    # Best effort, as in ImageOps.exif_transpose: a broken EXIF block must not
    # make an otherwise good image unreadable.
    try:
        with warnings.catch_warnings(record=True) as caught:
            # Pillow warns (UserWarning) about a damaged EXIF block: log it as ours.
            warnings.simplefilter("always")
            value = im.getexif().get(ORIENTATION_TAG, 1)
    except _EXIF_ERRORS as exc:
        _log.warning("%s: ignoring unreadable EXIF data (%s)", p, exc)
        return 1
    for w in caught:
        _log.warning("%s: damaged EXIF data (%s)", p, w.message)
    return valid_orientation(value)


def orientation_from_exif_bytes(p: Path, exif: bytes | None) -> int:
    """The orientation in a raw EXIF block (a PNG ``eXIf`` chunk), 1 when absent."""
    if not exif:
        return 1
    try:
        parsed = Image.Exif()
        parsed.load(exif)
        value = parsed.get(ORIENTATION_TAG, 1)
    except _EXIF_ERRORS as exc:
        _log.warning("%s: ignoring unreadable EXIF data (%s)", p, exc)
        return 1
    return valid_orientation(value)


def apply_orientation(a: np.ndarray, orientation: int) -> np.ndarray:
    """Turn stored pixels upright, as ``PIL.ImageOps.exif_transpose`` does (views)."""
    if orientation == 2:  # FLIP_LEFT_RIGHT
        return a[:, ::-1]
    if orientation == 3:  # ROTATE_180
        return a[::-1, ::-1]
    if orientation == 4:  # FLIP_TOP_BOTTOM
        return a[::-1]
    if orientation == 5:  # TRANSPOSE
        return a.swapaxes(0, 1)
    if orientation == 6:  # ROTATE_270 (counter-clockwise), i.e. 90 degrees clockwise
        return np.rot90(a, -1)
    if orientation == 7:  # TRANSVERSE
        return a[::-1, ::-1].swapaxes(0, 1)
    if orientation == 8:  # ROTATE_90
        return np.rot90(a, 1)
    return a
