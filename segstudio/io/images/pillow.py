"""PNG, JPEG, BMP, WebP and GIF (and the TIFFs tifffile hands over), read with Pillow or OpenCV.

Pillow reads the header and the pixel count is checked before any pixel is
decoded, without Pillow's own global decompression-bomb limit. Two kinds of
file go to OpenCV instead: plain JPEG (about a third faster) and 16-bit colour
PNG (Pillow would reduce it to 8 bits). PNG chunks are walked first, so a
truncated PNG is refused rather than silently read short. An animated GIF, PNG
(APNG) or WebP gives its first frame, as other tools do, and says so in a note.
"""

from __future__ import annotations

import io
import logging
import os
import struct
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np

# Importing the plugins registers them with Image.OPEN (used by _pil_open).
from PIL import (
    BmpImagePlugin,  # noqa: F401
    GifImagePlugin,  # noqa: F401
    Image,
    JpegImagePlugin,  # noqa: F401
    PngImagePlugin,  # noqa: F401
    TiffImagePlugin,  # noqa: F401
    WebPImagePlugin,  # noqa: F401
)

from segstudio.core.errors import CorruptImageError, ImageTooLargeError
from segstudio.io.images.decoded import DECODE_ERRORS, Decoded, Kind, check_pixels
from segstudio.io.images.exif import exif_orientation, orientation_from_exif_bytes

__all__ = ["check_header", "decode_pil"]

_log = logging.getLogger(__name__)

# Pillow formats we open, in the order their magic bytes are tried. TIFF goes to
# tifffile first and reaches Pillow only as a fallback.
_PIL_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "BMP", "WEBP", "GIF", "TIFF")
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# Formats whose extra frames are an animation: only their first frame is read.
_ANIMATED = {"GIF": "an animated GIF", "PNG": "an animated PNG", "WEBP": "an animated WebP"}
_JPEG_EOI = b"\xff\xd9"


@dataclass(frozen=True)
class _PngInfo:
    bit_depth: int
    color_type: int
    exif: bytes | None


def _pil_open(p: Path, data: bytes | BinaryIO) -> Image.Image:
    """Open (header only) with one of our formats, told apart by magic bytes.

    This does what ``Image.open`` does minus its global decompression-bomb check,
    which would warn or refuse at Pillow's own limit (about 89 / 179 megapixels)
    whatever ``max_pixels`` says; our own check follows. ``data`` is the file's
    bytes, or an open file (read from its start) to look at the header only.
    """
    if isinstance(data, bytes):
        prefix = data[:16]
    else:
        start = data.tell()
        prefix = data.read(16)
        data.seek(start)
    for fmt in _PIL_FORMATS:
        entry = Image.OPEN.get(fmt)
        if entry is None:
            continue
        factory, accept = entry
        if accept is not None:
            verdict = accept(prefix)
            if not verdict or isinstance(verdict, str):
                continue
        stream = io.BytesIO(data) if isinstance(data, bytes) else data
        try:
            with warnings.catch_warnings(record=True) as caught:
                # Pillow warns (UserWarning) about damaged metadata: log it as ours.
                warnings.simplefilter("always")
                im = factory(stream, os.fspath(p))
        except Image.DecompressionBombError as exc:
            raise ImageTooLargeError(p, f"Pillow refuses to decode it: {exc}") from None
        except DECODE_ERRORS as exc:
            raise CorruptImageError(p, f"damaged {fmt} header ({exc})") from None
        for w in caught:
            _log.warning("%s: %s", p, w.message)
        return im
    raise CorruptImageError(
        p, "not a PNG, JPEG, TIFF, BMP, WebP or GIF image (its contents are not recognised)"
    )


def check_header(p: Path, fh: BinaryIO, max_pixels: int | None) -> None:
    """Check the pixel limit from the header of an open file, before reading the rest."""
    # Leaving the ``with`` closes Pillow's image but not the caller's file (not Pillow's own).
    with _pil_open(p, fh) as im:
        width, height = im.size
        check_pixels(p, width, height, max_pixels)


def decode_pil(p: Path, data: bytes, max_pixels: int | None) -> Decoded:
    """Decode the file's bytes with Pillow (or OpenCV for plain JPEG and 16-bit colour PNG).

    An animated file gives its first frame, with a note in :attr:`Decoded.notes`.
    """
    im = _pil_open(p, data)
    with im:
        width, height = im.size
        check_pixels(p, width, height, max_pixels)
        decoded = _decode_opened(p, im, data, width, height)
        # An MPO (a camera JPEG with extra pictures: previews, depth) is a photo, not
        # an animation: its first picture is the photo, without a note.
        what = _ANIMATED.get(im.format or "")
        frames = _frame_count(im) if what else 1
        if frames > 1:
            note = f"frame 1 of {frames} used ({what}); the other frames are ignored"
            decoded = replace(decoded, notes=(*decoded.notes, note))
        return decoded


def _frame_count(im: Image.Image) -> int:
    """How many frames an opened image holds (1 when Pillow cannot tell)."""
    try:
        return max(1, int(getattr(im, "n_frames", 1)))
    except DECODE_ERRORS:  # counting GIF frames walks the file; a damaged tail is not our case
        return 1


def _decode_opened(p: Path, im: Image.Image, data: bytes, width: int, height: int) -> Decoded:
    """Decode an opened, size-checked image."""
    fmt = im.format or "?"
    png = _scan_png(p, data) if fmt == "PNG" else None

    if fmt in ("JPEG", "MPO") and im.mode == "RGB" and data.endswith(_JPEG_EOI):
        # Fast path: OpenCV decodes plain JPEG straight to an array, about a third
        # faster than Pillow. A JPEG that does not end in EOI may be truncated:
        # leave it to Pillow, which reports truncation.
        decoded = _decode_jpeg_cv2(data, fmt, width, height, exif_orientation(p, im))
        if decoded is not None:
            return decoded
    if png is not None and png.bit_depth == 16 and png.color_type in (2, 4, 6):
        # Pillow reduces 16-bit colour PNGs to 8 bits; OpenCV keeps all 16.
        return _decode_png16(p, data, png, width, height)

    try:
        im.load()
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(p, f"Pillow refuses to decode it: {exc}") from None
    except MemoryError:
        raise ImageTooLargeError(p, _no_memory(width, height)) from None
    except DECODE_ERRORS as exc:
        raise CorruptImageError(p, f"corrupt or truncated {fmt} data ({exc})") from None
    orientation = exif_orientation(p, im)
    try:
        return _pil_arrays(im, fmt, orientation)
    except MemoryError:
        raise ImageTooLargeError(p, _no_memory(width, height)) from None
    except DECODE_ERRORS as exc:
        raise CorruptImageError(p, f"cannot convert {fmt} mode {im.mode} ({exc})") from None


def _no_memory(width: int, height: int) -> str:
    return f"not enough memory to decode a {width} x {height} image"


def _pil_arrays(im: Image.Image, fmt: str, orientation: int) -> Decoded:
    mode = im.mode
    transparency = "transparency" in im.info

    def made(raw: np.ndarray, kind: Kind, bits: int = 8, alpha: bool = transparency) -> Decoded:
        return Decoded(raw, kind, mode, bits, alpha, fmt, orientation)

    if mode == "RGB":
        return made(np.array(im), Kind.RGB)
    if mode == "RGBA":
        return made(np.array(im), Kind.RGBA, alpha=True)
    if mode == "L":
        return made(np.array(im), Kind.GRAY)
    if mode == "LA":
        return made(np.array(im), Kind.GRAY_ALPHA, alpha=True)
    if mode == "1":
        # Pillow's bool arrays hold 255 for True; make them canonical 0/1 bools.
        return made(np.array(im).view(np.uint8) != 0, Kind.BILEVEL, bits=1)
    if mode == "P":
        colours = np.asarray(im.getpalette("RGB") or [], np.uint8).reshape(-1, 3)[:256]
        palette = np.zeros((256, 3), np.uint8)
        palette[: len(colours)] = colours
        return Decoded(
            np.array(im), Kind.PALETTE, mode, 8, transparency, fmt, orientation, palette=palette
        )
    if mode.startswith("I;16"):
        raw = np.array(im)
        return made(raw.astype(raw.dtype.newbyteorder("="), copy=False), Kind.GRAY, bits=16)
    if mode in ("I", "F"):
        return made(np.array(im), Kind.GRAY, bits=32)
    # CMYK, YCbCr, LAB, HSV, RGBX, RGBa, La, PA, ...: let Pillow make the colours.
    rgb = np.array(im.convert("RGB"))
    alpha = transparency or "A" in mode or "a" in mode
    return Decoded(np.array(im), Kind.CONVERTED, mode, 8, alpha, fmt, orientation, rgb=rgb)


def _decode_jpeg_cv2(
    data: bytes, fmt: str, width: int, height: int, orientation: int
) -> Decoded | None:
    flags = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    try:
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error:  # leave it to Pillow, whose errors say more
        return None
    if bgr is None or bgr.shape != (height, width, 3) or bgr.dtype != np.uint8:
        return None
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return Decoded(rgb, Kind.RGB, "RGB", 8, False, fmt, orientation, rgb=rgb)


def _decode_png16(p: Path, data: bytes, png: _PngInfo, width: int, height: int) -> Decoded:
    try:
        arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise CorruptImageError(p, f"cannot decode 16-bit PNG data ({exc})") from None
    if arr is None or arr.dtype != np.uint16 or arr.shape[:2] != (height, width) or arr.ndim != 3:
        raise CorruptImageError(p, "cannot decode 16-bit PNG data")
    orientation = orientation_from_exif_bytes(p, png.exif)
    if png.color_type == 2:  # RGB
        return Decoded(
            cv2.cvtColor(arr, cv2.COLOR_BGR2RGB), Kind.RGB, "RGB;16", 16, False, "PNG", orientation
        )
    if png.color_type == 6:  # RGBA
        rgba = cv2.cvtColor(arr, cv2.COLOR_BGRA2RGBA)
        return Decoded(rgba, Kind.RGBA, "RGBA;16", 16, True, "PNG", orientation)
    # Gray + alpha: OpenCV expands it to BGRA with B = G = R.
    raw = np.ascontiguousarray(arr[..., [0, 3]])
    return Decoded(raw, Kind.GRAY_ALPHA, "LA;16", 16, True, "PNG", orientation)


def _scan_png(p: Path, data: bytes) -> _PngInfo:
    """Walk the PNG chunks: refuse truncated files, find IHDR and eXIf.

    Pillow decodes a PNG whose last chunks (the end of the zlib stream, IEND) are
    cut off without complaint; walking the chunk lengths catches that.
    """
    pos = len(_PNG_MAGIC)
    size = len(data)
    bit_depth = color_type = -1
    exif: bytes | None = None
    while True:
        if pos + 8 > size:
            raise CorruptImageError(p, "truncated PNG data (the file ends before its IEND chunk)")
        length, chunk = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if end > size:
            raise CorruptImageError(
                p, f"truncated PNG data (the file ends inside its {chunk.decode('latin-1')} chunk)"
            )
        if chunk == b"IHDR" and length >= 13:
            bit_depth, color_type = data[pos + 16], data[pos + 17]
        elif chunk == b"eXIf":
            exif = data[pos + 8 : pos + 8 + length]
        elif chunk == b"IEND":
            return _PngInfo(bit_depth, color_type, exif)
        pos = end
