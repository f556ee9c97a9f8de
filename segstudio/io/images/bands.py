"""Reading a large TIFF a band of rows at a time, for prediction that streams.

A tiled or striped TIFF can be decoded piece by piece: :func:`open_bands`
returns a :class:`TiffBands` whose :meth:`~TiffBands.rows` decodes only the
strips or tiles that cover the rows asked for, so predicting a 12000 x 9000
scan holds one band of tile rows in memory, not the whole image (324 MB of
RGB). It covers what such scans and mosaics are written as: 8-bit RGB (an
alpha channel is dropped) or gray (repeated into RGB, as
:func:`~segstudio.io.images.read_image` does), chunky, upright, in a
compression tifffile decodes by itself (none, Deflate, PackBits, LZMA).
Anything else gives None: read it whole with
:func:`~segstudio.io.images.read_image`, which handles every kind of file.
"""

from __future__ import annotations

import logging
import lzma
import os
import threading
from pathlib import Path

import numpy as np
import tifffile

from segstudio.core.errors import CorruptImageError
from segstudio.io.images.decoded import DECODE_ERRORS, check_pixels
from segstudio.io.images.tiff import TIFF_MAGIC

__all__ = ["TiffBands", "open_bands"]

# What a damaged strip or tile raises while it is read or decoded.
# (imagecodecs, when installed, raises RuntimeError subclasses.)
_ERRORS: tuple[type[BaseException], ...] = (
    tifffile.TiffFileError,
    lzma.LZMAError,
    RuntimeError,
    TypeError,
    ArithmeticError,  # a zero tile size in a damaged header, say
    *DECODE_ERRORS,
)

_log = logging.getLogger(__name__)

_ORIENTATION = 274


class TiffBands:
    """Rows of one TIFF page on demand; use :func:`open_bands` to make one.

    ``shape`` is ``(height, width, 3)``; :meth:`rows` returns ``H x W x 3``
    uint8 RGB. Thread-safe; :meth:`close` (or ``with``) closes the file.
    """

    def __init__(self, path: Path, tif: tifffile.TiffFile, page: tifffile.TiffPage) -> None:
        self.path = path
        self._tif = tif
        self._page = page
        self._lock = threading.Lock()
        height, width = int(page.imagelength), int(page.imagewidth)
        self.shape = (height, width, 3)
        self._chunk_rows, self._chunk_cols = int(page.chunks[0]), int(page.chunks[1])
        self._across = -(-width // self._chunk_cols)  # chunks per row of chunks
        self._samples = int(page.samplesperpixel)

    def __enter__(self) -> TiffBands:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._tif.close()

    def rows(self, y0: int, y1: int) -> np.ndarray:
        """Rows ``[y0, y1)`` as an ``(y1 - y0) x width x 3`` uint8 RGB array.

        Raises :class:`~segstudio.core.errors.CorruptImageError` when a strip or
        tile of those rows cannot be decoded.
        """
        height, width, _ = self.shape
        if not 0 <= y0 < y1 <= height:
            raise ValueError(f"rows {y0}..{y1} are not within 0..{height}")
        band = np.zeros((y1 - y0, width, self._samples), np.uint8)
        first, last = y0 // self._chunk_rows, (y1 - 1) // self._chunk_rows
        ids = [r * self._across + c for r in range(first, last + 1) for c in range(self._across)]
        page = self._page
        try:
            with self._lock:
                fh = self._tif.filehandle
                offsets = [page.dataoffsets[i] for i in ids]
                counts = [page.databytecounts[i] for i in ids]
                # sorted by offset (each carries its index): tifffile's read of
                # unsorted segments misplaces those after an empty chunk
                segments = list(fh.read_segments(offsets, counts, indices=ids, sort=True))
            for data, index in segments:
                chunk, (_, _, cy, cx, _), _shape = page.decode(data, index, _fullsize=page.is_tiled)
                if chunk is None:  # an empty chunk: left black
                    continue
                top, bottom = max(y0, cy), min(y1, cy + chunk.shape[1])
                right = min(width, cx + chunk.shape[2])
                if top < bottom:
                    band[top - y0 : bottom - y0, cx:right] = chunk[
                        0, top - cy : bottom - cy, : right - cx, : self._samples
                    ]
        except _ERRORS as exc:
            raise CorruptImageError(self.path, f"corrupt or truncated TIFF data ({exc})") from None
        if self._samples == 1:
            return np.repeat(band, 3, axis=2)
        return np.ascontiguousarray(band[..., :3])


def open_bands(path: str | os.PathLike[str], max_pixels: int | None = None) -> TiffBands | None:
    """A band reader for a TIFF that can be read by rows, or None (then read it whole).

    Raises :class:`~segstudio.core.errors.ImageTooLargeError` for more than
    ``max_pixels`` pixels, as :func:`~segstudio.io.images.read_image` would.
    """
    p = Path(path)
    try:
        with open(p, "rb") as f:
            if f.read(4) not in TIFF_MAGIC:
                return None
        tif = tifffile.TiffFile(p)
    except (OSError, tifffile.TiffFileError, ValueError):
        return None  # read_image gives the precise error
    try:
        # a damaged header's numbers (a zero tile size) raise, not warn: numpy's
        # FloatingPointError is an ArithmeticError, one of _ERRORS
        try:
            with np.errstate(divide="raise", invalid="raise"):
                page = tif.pages.first
                reason = _why_not(tif, page)
                bands = TiffBands(p, tif, page) if reason is None else None
        except _ERRORS as exc:  # read_image says what is wrong
            bands, reason = None, f"unreadable header ({exc})"
        if bands is not None:
            check_pixels(p, bands.shape[1], bands.shape[0], max_pixels)
            return bands
        _log.debug("%s: read whole (%s)", p, reason)
    except BaseException:
        tif.close()
        raise
    tif.close()
    return None


def _why_not(tif: tifffile.TiffFile, page: tifffile.TiffPage) -> str | None:
    """Why ``page`` cannot be read by bands, or None when it can."""
    if not isinstance(page, tifffile.TiffPage) or len(tif.series) != 1:
        return "not one plain image"
    if len(tif.series[0].pages) != 1 or page.imagedepth != 1:
        return "more than one page"
    if page.dtype != np.uint8 or page.bitspersample != 8:
        return "not 8-bit"
    rgb = page.photometric == tifffile.PHOTOMETRIC.RGB and page.samplesperpixel in (3, 4)
    gray = page.photometric == tifffile.PHOTOMETRIC.MINISBLACK and page.samplesperpixel == 1
    if not (rgb or gray):
        return "neither RGB nor gray"
    if page.samplesperpixel > 1 and page.planarconfig != tifffile.PLANARCONFIG.CONTIG:
        return "planar"
    tag = page.tags.get(_ORIENTATION)
    if tag is not None and tag.value != 1:
        return "rotated by its orientation tag"
    try:
        tifffile.TIFF.DECOMPRESSORS[page.compression]
    except KeyError:  # needs imagecodecs (LZW, JPEG, ...): read_image falls back to Pillow
        return f"compression {page.compression!r}"
    if tuple(page.shaped[:2]) != (1, 1) or len(page.dataoffsets) != np.prod(page.chunked):
        return "an unusual layout"
    sizes = (page.chunks[0], page.chunks[1], page.imagelength, page.imagewidth)
    if min(int(v) for v in sizes) < 1:
        return "an empty image or chunk"
    return None
