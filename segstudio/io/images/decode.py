"""Reading an image file: :func:`read_image` and the :class:`LoadedImage` it returns.

:func:`read_image` turns any PNG, JPEG, TIFF, BMP, WebP or GIF file into a
:class:`LoadedImage`: an ``H x W x 3`` ``uint8`` array for the model and the
screen, plus the file's faithful values (16-bit, float, alpha, palette indices)
in ``raw``. EXIF orientation is applied to both. An animated or multi-page
file gives its first frame, with a note (:attr:`LoadedImage.notes`, and a
logged warning). Every failure raises an
:class:`~segstudio.core.errors.ImageReadError` subclass whose message names the
file and says what is wrong.

The format is told from the file's contents: TIFF goes to
:mod:`~segstudio.io.images.tiff` (falling back to Pillow), everything else to
:mod:`~segstudio.io.images.pillow`; :mod:`~segstudio.io.images.tone` makes
``rgb`` (see there for how each kind of file is converted).
"""

from __future__ import annotations

import logging
import os
import stat
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

from segstudio.core.errors import (
    EmptyImageError,
    ImageNotFoundError,
    ImageReadError,
    ImageTooLargeError,
)
from segstudio.io.images.decoded import Decoded, check_pixels
from segstudio.io.images.exif import apply_orientation
from segstudio.io.images.pillow import check_header, decode_pil
from segstudio.io.images.tiff import TIFF_MAGIC, decode_tiff
from segstudio.io.images.tone import to_rgb

__all__ = ["LoadedImage", "decode_file", "read_image", "read_thumbnail"]

_log = logging.getLogger(__name__)

# Files larger than this have their header checked against the pixel limit before
# they are read into memory (smaller ones are read first: cheaper, and harmless).
_HEADER_FIRST_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, eq=False)
class LoadedImage:
    """An image read from disk, orientation applied.

    Attributes
    ----------
    path : Path
        The file it came from.
    rgb : numpy.ndarray
        ``H x W x 3`` ``uint8``, C-contiguous: the model input and the default display.
    raw : numpy.ndarray
        The file's own values after orientation: ``H x W`` or ``H x W x C`` in the
        original dtype (``uint16``, ``float32``, ``bool`` for 1-bit, palette indices
        for mode P). For 8-bit RGB it is the same array as ``rgb``.
    mode : str
        What the file held, e.g. ``"RGB"``, ``"L"``, ``"I;16"``, ``"RGBA;16"``, ``"P"``,
        ``"F"``, ``"tiff uint16 2ch"``, ``"tiff float32 page 1 of 5"``.
    bit_depth : int
        Bits per sample in the file (1, 8, 16, 32, ...).
    has_alpha : bool
        Whether the file carries transparency (dropped from ``rgb``).
    notes : tuple of str
        What the reader should know about how the file was read, e.g.
        ``"frame 1 of 12 used (an animated GIF)"``; empty for most files.

    Notes
    -----
    The arrays are ordinary writable arrays owned by this object; treat them as
    read-only (``rgb`` and ``raw`` may be one array). Equality is identity.
    """

    path: Path
    rgb: np.ndarray = field(repr=False)
    raw: np.ndarray = field(repr=False)
    mode: str
    bit_depth: int
    has_alpha: bool
    notes: tuple[str, ...] = ()

    @property
    def height(self) -> int:
        """Rows, after orientation."""
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        """Columns, after orientation."""
        return int(self.rgb.shape[1])

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)``: the shape of this image's label map."""
        return (self.height, self.width)


def read_image(path: str | os.PathLike[str], *, max_pixels: int | None = None) -> LoadedImage:
    """Read a PNG, JPEG, TIFF, BMP, WebP or GIF image.

    The format is told from the file's contents, not its suffix. EXIF (or TIFF)
    orientation is applied. The pixel count is checked against ``max_pixels``
    from the header, before anything is decoded. An animated GIF, PNG or WebP,
    or a multi-page TIFF, gives its first frame (``notes`` says so).

    Parameters
    ----------
    path : str or os.PathLike
        The image file.
    max_pixels : int, optional
        Refuse images with more than this many pixels (width x height), a guard
        against running out of memory and against decompression bombs. Default:
        :func:`~segstudio.io.images.limits.pixel_limit`, derived from the memory
        available (``SEGSTUDIO_MAX_PIXELS`` overrides it).

    Returns
    -------
    LoadedImage
        ``rgb`` (``H x W x 3`` ``uint8``) and the faithful ``raw`` values; see
        :mod:`segstudio.io.images.tone` for how each kind of file is converted.

    Raises
    ------
    ImageNotFoundError
        No such file, or the path is a folder.
    EmptyImageError
        The file is 0 bytes long.
    CorruptImageError
        Not an image of a supported format, or its data is damaged or truncated.
    ImageTooLargeError
        More than ``max_pixels`` pixels, or not enough memory to decode it; the
        message gives the size, the limit and how to raise it.
    UnsupportedImageError
        A readable image SegStudio cannot use (zero size, more than four channels, ...).
    ImageReadError
        Any other failure to read the file (e.g. permission denied).
    """
    p = Path(path)
    decoded = decode_file(p, max_pixels)
    raw = np.ascontiguousarray(apply_orientation(decoded.raw, decoded.orientation))
    if decoded.rgb is not None:
        rgb = np.ascontiguousarray(apply_orientation(decoded.rgb, decoded.orientation))
        if decoded.rgb is decoded.raw:
            raw = rgb
    else:
        rgb = to_rgb(raw, decoded)
    return LoadedImage(
        path=p,
        rgb=rgb,
        raw=raw,
        mode=decoded.mode,
        bit_depth=decoded.bit_depth,
        has_alpha=decoded.has_alpha,
        notes=decoded.notes,
    )


def read_thumbnail(path: str | os.PathLike[str], size: int = 64) -> np.ndarray:
    """A small RGB preview, longest side at most ``size``, for image lists.

    8-bit images are scaled by Pillow (JPEGs decode at a reduced scale, so a
    thumbnail costs a fraction of a full read); 16-bit, float and unusual
    images go through :func:`read_image` for its contrast stretch.

    Raises
    ------
    ImageReadError
        When the image cannot be read at all.
    """
    p = Path(path)
    try:
        with warnings.catch_warnings():  # our own pixel limit is checked right after
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(p)
        with im:
            check_pixels(p, im.width, im.height, None)
            if im.mode in ("RGB", "RGBA", "L", "LA", "P", "1"):
                if im.format == "JPEG":
                    im.draft("RGB", (size * 2, size * 2))
                upright = ImageOps.exif_transpose(im)
                upright.thumbnail((size, size))
                return np.array(upright.convert("RGB"))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        pass  # the full reader gives the precise error, or copes
    rgb = read_image(p).rgb
    scale = size / max(rgb.shape[:2])
    if scale >= 1:
        return rgb
    w, h = max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale))
    return cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)


# --------------------------------------------------------------------------- file access


def decode_file(p: Path, max_pixels: int | None) -> Decoded:
    """Decode ``p`` (before orientation), TIFF by tifffile, anything else by Pillow.

    The pixel limit is checked from the header before any pixel is decoded, and
    for a large file before the file is read into memory. A note about a first
    frame used is logged as a warning.
    """
    data = _read_file(p, max_pixels)
    decoded: Decoded | None = None
    if data is None:
        decoded = decode_tiff(p, max_pixels)
        if decoded is None:
            data = _read_tiff_bytes(p)
    if decoded is None:
        assert data is not None
        decoded = decode_pil(p, data, max_pixels)
    for note in decoded.notes:
        _log.warning("%s: %s", p, note)
    return decoded


def _read_file(p: Path, max_pixels: int | None) -> bytes | None:
    """The whole file, or None for a TIFF (tifffile reads those by path).

    Raises the not-found / folder / empty / permission errors, and for a file of
    more than :data:`_HEADER_FIRST_BYTES` the pixel limit from its header.
    """
    try:
        st = p.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise ImageNotFoundError(p, "no such file") from None
    except PermissionError:
        raise ImageReadError(p, "permission denied") from None
    except OSError as exc:
        raise ImageReadError(p, f"cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageNotFoundError(p, "is a folder, not an image file")
    if not stat.S_ISREG(st.st_mode):
        raise ImageNotFoundError(p, "is not a regular file")
    if st.st_size == 0:
        raise EmptyImageError(p, "the file is empty (0 bytes)")
    try:
        with open(p, "rb") as fh:
            if fh.read(4) in TIFF_MAGIC:
                return None
            fh.seek(0)
            if st.st_size > _HEADER_FIRST_BYTES:
                check_header(p, fh, max_pixels)
                fh.seek(0)
            data = fh.read()
    except PermissionError:
        raise ImageReadError(p, "permission denied") from None
    except MemoryError:
        raise ImageTooLargeError(
            p, f"not enough memory to read this {st.st_size:,}-byte file"
        ) from None
    except OSError as exc:
        raise ImageReadError(p, f"cannot be read ({exc.strerror or exc})") from None
    if not data:  # emptied since the stat
        raise EmptyImageError(p, "the file is empty (0 bytes)")
    return data


def _read_tiff_bytes(p: Path) -> bytes:
    try:
        return p.read_bytes()
    except OSError as exc:
        raise ImageReadError(p, f"cannot be read ({exc.strerror or exc})") from None
