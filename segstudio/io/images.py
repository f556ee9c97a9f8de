"""Reading images and label maps, writing label maps and RGB images.

:func:`read_image` turns any PNG, JPEG, TIFF, BMP or WebP file into a
:class:`LoadedImage`: an ``H x W x 3`` ``uint8`` array for the model and the
screen, plus the file's faithful values (16-bit, float, alpha, palette indices)
in ``raw``. EXIF orientation is applied to both. Every failure raises an
:class:`~segstudio.core.errors.ImageReadError` subclass whose message names the
file and says what is wrong.

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

TIFF files are read with tifffile. A multi-page file or a stack yields its
first page (``mode`` says so), except that two to four pages of one
single-channel image (a channels-first ``C x H x W`` array saved page by page)
are read as channels. Planar ``C x H x W`` pages are transposed to
``H x W x C``. Compressions tifffile cannot decode without imagecodecs (LZW,
JPEG), and photometric kinds other than gray or RGB (palette, CMYK, YCbCr,
min-is-white), are read with Pillow instead.
"""

from __future__ import annotations

import enum
import io
import logging
import math
import os
import re
import stat
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import tifffile

# Importing the plugins registers them with Image.OPEN (used by _pil_open).
from PIL import (
    BmpImagePlugin,  # noqa: F401
    ExifTags,
    Image,
    ImageOps,
    JpegImagePlugin,  # noqa: F401
    PngImagePlugin,  # noqa: F401
    TiffImagePlugin,  # noqa: F401
    WebPImagePlugin,  # noqa: F401
)

from segstudio.core.atomic import atomic_path
from segstudio.core.errors import (
    CorruptImageError,
    EmptyImageError,
    ImageNotFoundError,
    ImageReadError,
    ImageTooLargeError,
    LabelReadError,
    UnsupportedImageError,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "MAX_PIXELS",
    "LoadedImage",
    "list_images",
    "read_image",
    "read_label_map",
    "write_label_map",
    "write_rgb",
]

_log = logging.getLogger(__name__)

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
"""File suffixes :func:`list_images` picks up (compared case-insensitively)."""

MAX_PIXELS: int = 40_000 * 40_000
"""Default limit on width x height, checked from the header before decoding."""

# Pillow formats we open, in the order their magic bytes are tried. TIFF goes to
# tifffile first and reaches Pillow only as a fallback.
_PIL_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "BMP", "WEBP", "TIFF")
_TIFF_MAGIC: tuple[bytes, ...] = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_EOI = b"\xff\xd9"
# The contrast stretch takes its percentiles on about this many pixels.
_SAMPLE_PIXELS = 1 << 18
# TIFF ExtraSamples values that mean "alpha" (associated, unassociated).
_TIFF_ALPHA_EXTRASAMPLES = (1, 2)
# Failures of Pillow, tifffile and zlib while parsing or decoding a file.
_DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    struct.error,
    zlib.error,
)


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


class _Kind(enum.Enum):
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
class _Decoded:
    """A decoded file before orientation."""

    raw: np.ndarray
    kind: _Kind
    mode: str
    bit_depth: int
    has_alpha: bool
    file_format: str  # "PNG", "JPEG", "MPO", "TIFF", "BMP", "WEBP"
    orientation: int = 1
    palette: np.ndarray | None = None  # 256 x 3 uint8, for _Kind.PALETTE
    rgb: np.ndarray | None = None  # already made (fast JPEG path, converted modes)


@dataclass(frozen=True)
class _PngInfo:
    bit_depth: int
    color_type: int
    exif: bytes | None


# --------------------------------------------------------------------------- public API


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    """List the image files directly inside ``folder``, in natural order.

    Parameters
    ----------
    folder : str or os.PathLike
        The folder to list (not recursed into).

    Returns
    -------
    list of Path
        Files whose suffix is in :data:`IMAGE_SUFFIXES` (any case), hidden files
        (name starting with ``.``) left out, sorted naturally by name
        (``img2.png`` before ``img10.png``).

    Raises
    ------
    ImageNotFoundError
        ``folder`` does not exist.
    ImageReadError
        ``folder`` is a file, or cannot be listed.
    """
    root = Path(folder)
    try:
        entries = list(root.iterdir())
    except FileNotFoundError:
        raise ImageNotFoundError(root, "no such folder") from None
    except NotADirectoryError:
        raise ImageReadError(root, "is a file, not a folder of images") from None
    except PermissionError:
        raise ImageReadError(root, "permission denied: cannot list this folder") from None
    except OSError as exc:
        raise ImageReadError(root, f"cannot list this folder ({exc.strerror or exc})") from None
    images = [
        p
        for p in entries
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
    ]
    images.sort(key=lambda p: natural_key(p.name))
    return images


def read_image(path: str | os.PathLike[str], *, max_pixels: int = MAX_PIXELS) -> LoadedImage:
    """Read a PNG, JPEG, TIFF, BMP or WebP image.

    The format is told from the file's contents, not its suffix. EXIF (or TIFF)
    orientation is applied. The pixel count is checked against ``max_pixels``
    from the header, before anything is decoded.

    Parameters
    ----------
    path : str or os.PathLike
        The image file.
    max_pixels : int, optional
        Refuse images with more than this many pixels (width x height), a guard
        against decompression bombs. Default :data:`MAX_PIXELS`.

    Returns
    -------
    LoadedImage
        ``rgb`` (``H x W x 3`` ``uint8``) and the faithful ``raw`` values; see the
        module docstring for how each kind of file is converted.

    Raises
    ------
    ImageNotFoundError
        No such file, or the path is a folder.
    EmptyImageError
        The file is 0 bytes long.
    CorruptImageError
        Not an image of a supported format, or its data is damaged or truncated.
    ImageTooLargeError
        More than ``max_pixels`` pixels, or not enough memory to decode it.
    UnsupportedImageError
        A readable image SegStudio cannot use (zero size, more than four channels, ...).
    ImageReadError
        Any other failure to read the file (e.g. permission denied).
    """
    p = Path(path)
    decoded = _decode(p, max_pixels)
    raw = np.ascontiguousarray(_apply_orientation(decoded.raw, decoded.orientation))
    if decoded.rgb is not None:
        rgb = np.ascontiguousarray(_apply_orientation(decoded.rgb, decoded.orientation))
        if decoded.rgb is decoded.raw:
            raw = rgb
    else:
        rgb = _to_rgb(raw, decoded)
    return LoadedImage(
        path=p,
        rgb=rgb,
        raw=raw,
        mode=decoded.mode,
        bit_depth=decoded.bit_depth,
        has_alpha=decoded.has_alpha,
    )


def read_label_map(path: str | os.PathLike[str], *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read a label map: a single-channel image of class indices.

    Mode L and mode P files give their pixel values (for P the palette indices,
    not the palette colours). 1-bit files give 0 and 1. 16-bit or 32-bit files
    are accepted when every value lies in 0..255. An RGB(A) file whose three
    channels are equal everywhere (a gray map saved as RGB) is accepted too; an
    alpha channel is ignored when every pixel is opaque. Orientation is applied
    as in :func:`read_image`, so a map lines up with its image.

    Parameters
    ----------
    path : str or os.PathLike
        The label file, normally a PNG.
    max_pixels : int, optional
        As in :func:`read_image`.

    Returns
    -------
    numpy.ndarray
        ``H x W`` ``uint8``, C-contiguous.

    Raises
    ------
    LabelReadError
        The file is an image but not a map of class indices 0..255: colour-coded
        RGB, values above 255 or negative, floating point, transparent pixels,
        two channels.
    ImageReadError
        Any failure of :func:`read_image` (missing, empty, corrupt, too large ...).
    """
    p = Path(path)
    decoded = _decode(p, max_pixels)
    if decoded.file_format in ("JPEG", "MPO"):
        _log.warning("%s: JPEG is lossy; class indices read from it may be wrong", p)
    raw = _apply_orientation(decoded.raw, decoded.orientation)
    return np.ascontiguousarray(_label_indices(p, raw, decoded))


def write_label_map(
    path: str | os.PathLike[str], index: np.ndarray, *, palette: np.ndarray | None = None
) -> None:
    """Write a label map as a PNG, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.png`` file to create or replace.
    index : numpy.ndarray
        ``H x W`` ``uint8`` class indices (255 = unlabeled).
    palette : numpy.ndarray, optional
        ``N x 3`` ``uint8`` colours (``N <= 256``; missing entries are black). With a
        palette the PNG is mode P, which viewers show in colour while the pixel
        values stay the indices; without one it is mode L (grayscale).

    Raises
    ------
    ValueError
        ``index`` or ``palette`` has the wrong type, dtype or shape, or ``path``
        does not end in ``.png``.
    OSError
        The file cannot be written.
    """
    p = Path(path)
    _require_png_suffix(p)
    data = encode_label_map(index, palette=palette)
    with atomic_path(p) as temp:
        temp.write_bytes(data)


def encode_label_map(index: np.ndarray, *, palette: np.ndarray | None = None) -> bytes:
    """The PNG bytes :func:`write_label_map` writes (mode L, or P with ``palette``).

    Encoding is the slow part of a save; callers that hold a lock encode first.
    """
    arr = _require_uint8(index, "label map", ndim=2)
    im = Image.fromarray(arr)
    if palette is not None:
        pal = np.asarray(palette)
        if pal.dtype != np.uint8 or pal.ndim != 2 or pal.shape[1] != 3 or not 1 <= len(pal) <= 256:
            raise ValueError(
                f"palette must be an N x 3 uint8 array with 1 <= N <= 256, "
                f"got shape {pal.shape} dtype {pal.dtype}"
            )
        full = np.zeros((256, 3), np.uint8)
        full[: len(pal)] = pal
        im.putpalette(full.tobytes(), "RGB")  # L -> P; the pixel values are unchanged
    out = io.BytesIO()
    im.save(out, format="PNG")
    return out.getvalue()


def write_rgb(path: str | os.PathLike[str], rgb: np.ndarray) -> None:
    """Write an ``H x W x 3`` ``uint8`` image as an RGB PNG, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.png`` file to create or replace.
    rgb : numpy.ndarray
        ``H x W x 3`` ``uint8``.

    Raises
    ------
    ValueError
        ``rgb`` has the wrong type, dtype or shape, or ``path`` does not end in ``.png``.
    OSError
        The file cannot be written.
    """
    p = Path(path)
    _require_png_suffix(p)
    arr = _require_uint8(rgb, "RGB image", ndim=3)
    if arr.shape[2] != 3:
        raise ValueError(f"RGB image must be H x W x 3, got shape {arr.shape}")
    im = Image.fromarray(arr)
    with atomic_path(p) as temp:
        im.save(temp, format="PNG")


# --------------------------------------------------------------------------- file access


def natural_key(name: str) -> tuple[list[str | int], str]:
    """Sort key that puts ``img2`` before ``img10``.

    ``re.split`` with a group alternates text and digit runs, so odd positions
    are numbers (``int`` reads any Unicode decimal digits that ``\\d`` matched).
    """
    parts = re.split(r"(\d+)", name)
    key: list[str | int] = [int(tok) if i % 2 else tok.casefold() for i, tok in enumerate(parts)]
    return key, name


def _read_file(p: Path) -> bytes | None:
    """The whole file, or None for a TIFF (tifffile reads those by path).

    Raises the not-found / folder / empty / permission errors.
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
            if fh.read(4) in _TIFF_MAGIC:
                return None
            fh.seek(0)
            data = fh.read()
    except PermissionError:
        raise ImageReadError(p, "permission denied") from None
    except OSError as exc:
        raise ImageReadError(p, f"cannot be read ({exc.strerror or exc})") from None
    if not data:  # emptied since the stat
        raise EmptyImageError(p, "the file is empty (0 bytes)")
    return data


def _check_pixels(p: Path, width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise UnsupportedImageError(p, f"image has zero size ({width} x {height})")
    pixels = width * height
    if pixels > max_pixels:
        raise ImageTooLargeError(
            p,
            f"image is {width} x {height} = {pixels:,} pixels, more than the limit of "
            f"{max_pixels:,}; it may be a decompression bomb. If you trust this file, "
            "raise the limit (max_pixels).",
        )


def _decode(p: Path, max_pixels: int) -> _Decoded:
    data = _read_file(p)
    if data is None:
        decoded = _decode_tiff(p, max_pixels)
        if decoded is not None:
            return decoded
        data = _read_tiff_bytes(p)
    return _decode_pil(p, data, max_pixels)


def _read_tiff_bytes(p: Path) -> bytes:
    try:
        return p.read_bytes()
    except OSError as exc:
        raise ImageReadError(p, f"cannot be read ({exc.strerror or exc})") from None


# --------------------------------------------------------------------------- Pillow


def _pil_open(p: Path, data: bytes) -> Image.Image:
    """Open (header only) with one of our formats, told apart by magic bytes.

    This does what ``Image.open`` does minus its global decompression-bomb check,
    which would warn or refuse at Pillow's own limit (about 89 / 179 megapixels)
    whatever ``max_pixels`` says; our own check follows.
    """
    prefix = data[:16]
    for fmt in _PIL_FORMATS:
        entry = Image.OPEN.get(fmt)
        if entry is None:
            continue
        factory, accept = entry
        if accept is not None:
            verdict = accept(prefix)
            if not verdict or isinstance(verdict, str):
                continue
        try:
            return factory(io.BytesIO(data), os.fspath(p))
        except Image.DecompressionBombError as exc:
            raise ImageTooLargeError(p, f"Pillow refuses to decode it: {exc}") from None
        except _DECODE_ERRORS as exc:
            raise CorruptImageError(p, f"damaged {fmt} header ({exc})") from None
    raise CorruptImageError(
        p, "not a PNG, JPEG, TIFF, BMP or WebP image (its contents are not recognised)"
    )


def _decode_pil(p: Path, data: bytes, max_pixels: int) -> _Decoded:
    im = _pil_open(p, data)
    with im:
        width, height = im.size
        _check_pixels(p, width, height, max_pixels)
        fmt = im.format or "?"
        png = _scan_png(p, data) if fmt == "PNG" else None

        if fmt in ("JPEG", "MPO") and im.mode == "RGB" and data.endswith(_JPEG_EOI):
            # Fast path: OpenCV decodes plain JPEG straight to an array, about a third
            # faster than Pillow. A JPEG that does not end in EOI may be truncated:
            # leave it to Pillow, which reports truncation.
            decoded = _decode_jpeg_cv2(data, fmt, width, height, _exif_orientation(p, im))
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
        except _DECODE_ERRORS as exc:
            raise CorruptImageError(p, f"corrupt or truncated {fmt} data ({exc})") from None
        orientation = _exif_orientation(p, im)
        try:
            return _pil_arrays(im, fmt, orientation)
        except MemoryError:
            raise ImageTooLargeError(p, _no_memory(width, height)) from None
        except _DECODE_ERRORS as exc:
            raise CorruptImageError(p, f"cannot convert {fmt} mode {im.mode} ({exc})") from None


def _no_memory(width: int, height: int) -> str:
    return f"not enough memory to decode a {width} x {height} image"


def _pil_arrays(im: Image.Image, fmt: str, orientation: int) -> _Decoded:
    mode = im.mode
    transparency = "transparency" in im.info

    def made(raw: np.ndarray, kind: _Kind, bits: int = 8, alpha: bool = transparency) -> _Decoded:
        return _Decoded(raw, kind, mode, bits, alpha, fmt, orientation)

    if mode == "RGB":
        return made(np.array(im), _Kind.RGB)
    if mode == "RGBA":
        return made(np.array(im), _Kind.RGBA, alpha=True)
    if mode == "L":
        return made(np.array(im), _Kind.GRAY)
    if mode == "LA":
        return made(np.array(im), _Kind.GRAY_ALPHA, alpha=True)
    if mode == "1":
        # Pillow's bool arrays hold 255 for True; make them canonical 0/1 bools.
        return made(np.array(im).view(np.uint8) != 0, _Kind.BILEVEL, bits=1)
    if mode == "P":
        colours = np.asarray(im.getpalette("RGB") or [], np.uint8).reshape(-1, 3)[:256]
        palette = np.zeros((256, 3), np.uint8)
        palette[: len(colours)] = colours
        return _Decoded(
            np.array(im), _Kind.PALETTE, mode, 8, transparency, fmt, orientation, palette=palette
        )
    if mode.startswith("I;16"):
        raw = np.array(im)
        return made(raw.astype(raw.dtype.newbyteorder("="), copy=False), _Kind.GRAY, bits=16)
    if mode in ("I", "F"):
        return made(np.array(im), _Kind.GRAY, bits=32)
    # CMYK, YCbCr, LAB, HSV, RGBX, RGBa, La, PA, ...: let Pillow make the colours.
    rgb = np.array(im.convert("RGB"))
    alpha = transparency or "A" in mode or "a" in mode
    return _Decoded(np.array(im), _Kind.CONVERTED, mode, 8, alpha, fmt, orientation, rgb=rgb)


def _decode_jpeg_cv2(
    data: bytes, fmt: str, width: int, height: int, orientation: int
) -> _Decoded | None:
    flags = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    try:
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error:  # leave it to Pillow, whose errors say more
        return None
    if bgr is None or bgr.shape != (height, width, 3) or bgr.dtype != np.uint8:
        return None
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return _Decoded(rgb, _Kind.RGB, "RGB", 8, False, fmt, orientation, rgb=rgb)


def _decode_png16(p: Path, data: bytes, png: _PngInfo, width: int, height: int) -> _Decoded:
    try:
        arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise CorruptImageError(p, f"cannot decode 16-bit PNG data ({exc})") from None
    if arr is None or arr.dtype != np.uint16 or arr.shape[:2] != (height, width) or arr.ndim != 3:
        raise CorruptImageError(p, "cannot decode 16-bit PNG data")
    orientation = _orientation_from_exif_bytes(p, png.exif)
    if png.color_type == 2:  # RGB
        return _Decoded(
            cv2.cvtColor(arr, cv2.COLOR_BGR2RGB), _Kind.RGB, "RGB;16", 16, False, "PNG", orientation
        )
    if png.color_type == 6:  # RGBA
        rgba = cv2.cvtColor(arr, cv2.COLOR_BGRA2RGBA)
        return _Decoded(rgba, _Kind.RGBA, "RGBA;16", 16, True, "PNG", orientation)
    # Gray + alpha: OpenCV expands it to BGRA with B = G = R.
    raw = np.ascontiguousarray(arr[..., [0, 3]])
    return _Decoded(raw, _Kind.GRAY_ALPHA, "LA;16", 16, True, "PNG", orientation)


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


# --------------------------------------------------------------------------- orientation

_ORIENTATION_TAG = int(ExifTags.Base.Orientation)


def _valid_orientation(value: object) -> int:
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _exif_orientation(p: Path, im: Image.Image) -> int:
    # Best effort, as in ImageOps.exif_transpose: a broken EXIF block must not
    # make an otherwise good image unreadable.
    try:
        value = im.getexif().get(_ORIENTATION_TAG, 1)
    except (*_DECODE_ERRORS, TypeError) as exc:
        _log.warning("%s: ignoring unreadable EXIF data (%s)", p, exc)
        return 1
    return _valid_orientation(value)


def _orientation_from_exif_bytes(p: Path, exif: bytes | None) -> int:
    if not exif:
        return 1
    try:
        parsed = Image.Exif()
        parsed.load(exif)
        value = parsed.get(_ORIENTATION_TAG, 1)
    except (*_DECODE_ERRORS, TypeError) as exc:
        _log.warning("%s: ignoring unreadable EXIF data (%s)", p, exc)
        return 1
    return _valid_orientation(value)


def _apply_orientation(a: np.ndarray, orientation: int) -> np.ndarray:
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


# --------------------------------------------------------------------------- TIFF


def _decode_tiff(p: Path, max_pixels: int) -> _Decoded | None:
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
    except (tifffile.TiffFileError, *_DECODE_ERRORS) as exc:
        raise CorruptImageError(p, f"corrupt or truncated TIFF data ({exc})") from None


def _decode_tiff_file(p: Path, tif: tifffile.TiffFile, max_pixels: int) -> _Decoded | None:
    if not tif.series:
        raise CorruptImageError(p, "the TIFF file holds no image")
    series = tif.series[0]
    page = series.keyframe
    if page is None:
        raise CorruptImageError(p, "the TIFF file holds no image")
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
        _check_pixels(p, page_shape[1], page_shape[0], max_pixels)
        arr, axes = series.asarray().reshape(s_shape), "SYX"
    elif (
        pages > 4
        and s_axes == "QYX"
        and page_axes == "YX"
        and s_shape[2] <= 4 < min(s_shape[0], s_shape[1])
    ):
        # tifffile's default layout for an H x W x C array that is not RGB
        # (e.g. two channels): H pages of W x C.
        _check_pixels(p, s_shape[1], s_shape[0], max_pixels)
        arr, axes = series.asarray().reshape(s_shape), "YXS"
    else:
        height, width = page_shape[page_axes.index("Y")], page_shape[page_axes.index("X")]
        _check_pixels(p, width, height, max_pixels)
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
        kind = _Kind.BILEVEL if arr.dtype == np.bool_ else _Kind.GRAY
    elif channels == 2:
        kind = _Kind.GRAY_ALPHA if alpha_marked else _Kind.TWO_CHANNEL
    elif channels == 3:
        kind = _Kind.RGB
    else:
        kind = _Kind.RGBA
    has_alpha = alpha_marked and channels in (2, 4)

    dtype_name = "1-bit" if arr.dtype == np.bool_ else arr.dtype.name
    mode = " ".join(["tiff", dtype_name, *([f"{channels}ch"] if channels > 1 else []), *notes])
    bits = page.bitspersample
    bit_depth = int(bits if isinstance(bits, int) else arr.dtype.itemsize * 8)
    if arr.dtype == np.bool_:
        bit_depth = 1
    orientation_tag = page.tags.get(_ORIENTATION_TAG)
    orientation = _valid_orientation(orientation_tag.value if orientation_tag else 1)
    return _Decoded(arr, kind, mode, bit_depth, has_alpha, "TIFF", orientation)


# --------------------------------------------------------------------------- to rgb


def _to_rgb(raw: np.ndarray, decoded: _Decoded) -> np.ndarray:
    """Make the H x W x 3 uint8 display/model array from oriented ``raw``."""
    kind = decoded.kind
    if kind is _Kind.PALETTE:
        assert decoded.palette is not None
        return decoded.palette[raw]
    if kind is _Kind.BILEVEL:
        return _gray_to_rgb(raw.astype(np.uint8) * np.uint8(255))
    if kind is _Kind.GRAY:
        return _gray_to_rgb(_to_uint8(raw))
    if kind is _Kind.GRAY_ALPHA:
        return _gray_to_rgb(_to_uint8(raw[..., 0]))
    if kind is _Kind.RGB and raw.dtype == np.uint8:
        return raw
    if kind in (_Kind.RGB, _Kind.RGBA):
        return np.ascontiguousarray(_to_uint8(raw[..., :3]))
    if kind is _Kind.TWO_CHANNEL:
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


# --------------------------------------------------------------------------- label maps


def _label_indices(p: Path, raw: np.ndarray, decoded: _Decoded) -> np.ndarray:
    kind = decoded.kind
    if kind is _Kind.PALETTE:
        return raw
    if kind is _Kind.BILEVEL:
        return raw.astype(np.uint8)
    if kind in (_Kind.GRAY_ALPHA, _Kind.RGBA):
        alpha = raw[..., -1]
        opaque = np.iinfo(alpha.dtype).max if alpha.dtype.kind in "iu" else 1.0
        if decoded.has_alpha and not bool((alpha == opaque).all()):
            raise LabelReadError(
                p,
                "the label image has transparent pixels; a label map has no alpha channel "
                "(mark unlabeled pixels with 255 instead)",
            )
        raw = raw[..., 0] if kind is _Kind.GRAY_ALPHA else raw[..., :3]
        kind = _Kind.GRAY if kind is _Kind.GRAY_ALPHA else _Kind.RGB
    if kind is _Kind.RGB:
        gray = bool((raw[..., 0] == raw[..., 1]).all()) and bool((raw[..., 1] == raw[..., 2]).all())
        if not gray:
            raise LabelReadError(
                p,
                "this is a colour-coded (RGB) label image, not a map of class indices; "
                "convert it to class indices with the label set's colour palette first "
                "(see segstudio.core.convert), or save it as a single-channel PNG",
            )
        raw = raw[..., 0]
        kind = _Kind.GRAY
    if kind is not _Kind.GRAY:
        raise LabelReadError(
            p, f"a {decoded.mode} image is not a label map; expected a single-channel PNG"
        )
    if raw.dtype == np.uint8:
        return raw
    if raw.dtype.kind not in "iu":
        raise LabelReadError(
            p, f"the label image holds {raw.dtype} values; a label map holds integer class indices"
        )
    low, high = int(raw.min()), int(raw.max())
    if low < 0 or high > 255:
        raise LabelReadError(
            p,
            f"the label image holds values from {low} to {high}; a label map holds class "
            "indices 0..255 (255 = unlabeled)",
        )
    return raw.astype(np.uint8)


# --------------------------------------------------------------------------- validation


def _require_png_suffix(p: Path) -> None:
    if p.suffix.lower() != ".png":
        raise ValueError(f"{p}: this function writes PNG files; the name must end in .png")


def _require_uint8(a: object, what: str, *, ndim: int) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        raise ValueError(f"{what} must be a numpy array, got {type(a).__name__}")
    if a.dtype != np.uint8:
        raise ValueError(f"{what} must have dtype uint8, got {a.dtype}")
    if a.ndim != ndim:
        raise ValueError(f"{what} must have {ndim} dimensions, got shape {a.shape}")
    if 0 in a.shape:
        raise ValueError(f"{what} is empty (shape {a.shape})")
    return np.ascontiguousarray(a)


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
        with Image.open(p) as im:
            if im.mode in ("RGB", "RGBA", "L", "LA", "P", "1"):
                if im.format == "JPEG":
                    im.draft("RGB", (size * 2, size * 2))
                im = ImageOps.exif_transpose(im)
                im.thumbnail((size, size))
                return np.array(im.convert("RGB"))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        pass  # the full reader gives the precise error, or copes
    rgb = read_image(p).rgb
    scale = size / max(rgb.shape[:2])
    if scale >= 1:
        return rgb
    w, h = max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale))
    return cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
