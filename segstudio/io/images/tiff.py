"""TIFF files, read with tifffile.

A multi-page file or a stack yields its first page (``mode`` says so), except
that two to four pages of one single-channel image (a channels-first
``C x H x W`` array saved page by page) are read as channels. Planar
``C x H x W`` pages are transposed to ``H x W x C``. Compressions tifffile
cannot decode without imagecodecs (LZW, JPEG), and photometric kinds other than
gray or RGB (palette, CMYK, YCbCr, min-is-white), are handed to Pillow instead:
:func:`decode_tiff` returns None for those.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import tifffile

from segstudio.core.errors import (
    CorruptImageError,
    ImageReadError,
    ImageTooLargeError,
    UnsupportedImageError,
)
from segstudio.io.images.decoded import DECODE_ERRORS, Decoded, Kind, check_pixels
from segstudio.io.images.exif import ORIENTATION_TAG, valid_orientation

__all__ = ["TIFF_MAGIC", "decode_tiff"]

_log = logging.getLogger(__name__)

TIFF_MAGIC: tuple[bytes, ...] = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
"""The first four bytes of a classic or BigTIFF file, either byte order."""

# TIFF ExtraSamples values that mean "alpha" (associated, unassociated).
_TIFF_ALPHA_EXTRASAMPLES = (1, 2)

# What tifffile raises on a corrupt or truncated file.
_TIFF_ERRORS: tuple[type[BaseException], ...] = (tifffile.TiffFileError, *DECODE_ERRORS)


def decode_tiff(p: Path, max_pixels: int | None) -> Decoded | None:
    """Decode with tifffile, or None to hand the file to Pillow."""
    try:
        with tifffile.TiffFile(p) as tif:
            return _decode_tiff_file(p, tif, max_pixels)
    except ImageReadError:
        raise
    except MemoryError:
        raise ImageTooLargeError(p, "not enough memory to decode this TIFF") from None
    except ValueError as exc:
        if "imagecodecs" in str(exc):  # a compression tifffile cannot decode alone
            _log.debug("%s: tifffile cannot decode it (%s); trying Pillow", p, exc)
            return None
        raise CorruptImageError(p, f"corrupt or truncated TIFF data ({exc})") from None
    except _TIFF_ERRORS as exc:
        raise CorruptImageError(p, f"corrupt or truncated TIFF data ({exc})") from None


def _decode_tiff_file(p: Path, tif: tifffile.TiffFile, max_pixels: int | None) -> Decoded | None:
    if not tif.series:
        raise CorruptImageError(p, "the TIFF file holds no image")
    series = tif.series[0]
    page = series.keyframe
    if page is None:
        raise CorruptImageError(p, "the TIFF file holds no image")
    # The size of the first page, checked before anything else (and before a file
    # handed to Pillow is read into memory).
    check_pixels(p, int(page.imagewidth), int(page.imagelength), max_pixels)
    if page.photometric not in (tifffile.PHOTOMETRIC.MINISBLACK, tifffile.PHOTOMETRIC.RGB):
        _log.debug("%s: TIFF photometric %s; reading with Pillow", p, page.photometric)
        return None
    pages = len(series.pages)
    s_axes, s_shape = series.axes, series.shape
    page_axes, page_shape = page.axes, page.shape
    notes: list[str] = []

    if (
        pages > 1
        and page_axes == "YX"
        and len(s_axes) == 3
        and s_axes[0] in "CSQI"
        and 2 <= s_shape[0] <= 4
    ):
        # A C x H x W array stored one channel per page.
        check_pixels(p, page_shape[1], page_shape[0], max_pixels)
        arr, axes = series.asarray().reshape(s_shape), "SYX"
    elif (
        pages > 4
        and s_axes == "QYX"
        and page_axes == "YX"
        and s_shape[2] <= 4 < min(s_shape[0], s_shape[1])
    ):
        # tifffile's default layout for an H x W x C array that is not RGB
        # (e.g. two channels): H pages of W x C.
        check_pixels(p, s_shape[1], s_shape[0], max_pixels)
        arr, axes = series.asarray().reshape(s_shape), "YXS"
    else:
        height, width = page_shape[page_axes.index("Y")], page_shape[page_axes.index("X")]
        check_pixels(p, width, height, max_pixels)
        arr, axes = tif.asarray(key=0, series=0), page_axes
        if pages > 1:
            notes.append(f"page 1 of {pages}")
        if arr.ndim != len(axes):  # unexpected layout: trust the array's own shape
            if arr.ndim not in (2, 3):
                raise UnsupportedImageError(p, f"unexpected TIFF page shape {arr.shape}")
            axes = "YXS"[: arr.ndim]

    # Planar (C x H x W) -> H x W x C; any other axis (depth, ...) -> its first plane.
    if "S" in axes and axes.index("S") < axes.index("Y"):
        notes.insert(0, "channels-first")
    order = [axes.index("Y"), axes.index("X")] + ([axes.index("S")] if "S" in axes else [])
    rest = [i for i in range(arr.ndim) if i not in order]
    arr = arr.transpose(rest + order)[(0,) * len(rest)]
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    channels = 1 if arr.ndim == 2 else int(arr.shape[2])
    if channels > 4:
        raise UnsupportedImageError(
            p, f"image has {channels} channels; SegStudio reads images with 1 to 4 channels"
        )
    if arr.dtype.kind not in "biuf":
        raise UnsupportedImageError(p, f"TIFF data type {arr.dtype} is not supported")
    if arr.dtype.byteorder not in "=|":
        arr = arr.astype(arr.dtype.newbyteorder("="))

    extras = tuple(int(e) for e in (page.extrasamples or ()))
    alpha_marked = bool(extras) and extras[-1] in _TIFF_ALPHA_EXTRASAMPLES
    if channels == 1:
        kind = Kind.BILEVEL if arr.dtype == np.bool_ else Kind.GRAY
    elif channels == 2:
        kind = Kind.GRAY_ALPHA if alpha_marked else Kind.TWO_CHANNEL
    elif channels == 3:
        kind = Kind.RGB
    else:
        kind = Kind.RGBA
    has_alpha = alpha_marked and channels in (2, 4)

    dtype_name = "1-bit" if arr.dtype == np.bool_ else arr.dtype.name
    mode = " ".join(["tiff", dtype_name, *([f"{channels}ch"] if channels > 1 else []), *notes])
    bits = page.bitspersample
    bit_depth = int(bits if isinstance(bits, int) else arr.dtype.itemsize * 8)
    if arr.dtype == np.bool_:
        bit_depth = 1
    orientation_tag = page.tags.get(ORIENTATION_TAG)
    orientation = valid_orientation(orientation_tag.value if orientation_tag else 1)
    frame_notes = tuple(
        f"{n} used (a {pages}-page TIFF); the other pages are ignored"
        for n in notes
        if n.startswith("page 1 of")
    )
    return Decoded(arr, kind, mode, bit_depth, has_alpha, "TIFF", orientation, notes=frame_notes)
