"""Label maps in and out: ``uint8`` class-index PNGs, and RGB PNGs of colour-coded masks.

A label map is an ``H x W`` ``uint8`` array of class indices, 255 = unlabeled.
:func:`read_label_map` accepts the single-channel files other tools write
(mode L or P, 1-bit, 16-bit within 0..255, gray saved as RGB) and refuses
colour-coded masks with a message that says how to convert them.
:func:`write_label_map` writes mode L, or mode P with a palette so viewers show
colours while the pixel values stay the indices; :func:`write_rgb` writes a
colour-coded mask (or any RGB image) for people to look at. Writes are atomic.
"""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path

import numpy as np
from PIL import Image

from segstudio.core.atomic import atomic_path
from segstudio.core.errors import LabelReadError
from segstudio.io.images.decode import decode_file
from segstudio.io.images.decoded import Decoded, Kind
from segstudio.io.images.exif import apply_orientation

__all__ = ["encode_label_map", "read_label_map", "write_label_map", "write_rgb"]

_log = logging.getLogger(__name__)


def read_label_map(path: str | os.PathLike[str], *, max_pixels: int | None = None) -> np.ndarray:
    """Read a label map: a single-channel image of class indices.

    Mode L and mode P files give their pixel values (for P the palette indices,
    not the palette colours). 1-bit files give 0 and 1. 16-bit or 32-bit files
    are accepted when every value lies in 0..255. An RGB(A) file whose three
    channels are equal everywhere (a gray map saved as RGB) is accepted too; an
    alpha channel is ignored when every pixel is opaque. Orientation is applied
    as in :func:`~segstudio.io.images.read_image`, so a map lines up with its image.

    Parameters
    ----------
    path : str or os.PathLike
        The label file, normally a PNG.
    max_pixels : int, optional
        As in :func:`~segstudio.io.images.read_image`.

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
        Any failure of :func:`~segstudio.io.images.read_image` (missing, empty,
        corrupt, too large ...).
    """
    p = Path(path)
    decoded = decode_file(p, max_pixels)
    if decoded.file_format in ("JPEG", "MPO"):
        _log.warning("%s: JPEG is lossy; class indices read from it may be wrong", p)
    raw = apply_orientation(decoded.raw, decoded.orientation)
    return np.ascontiguousarray(_label_indices(p, raw, decoded))


def write_label_map(
    path: str | os.PathLike[str],
    index: np.ndarray,
    *,
    palette: np.ndarray | None = None,
    compress_level: int = 6,
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
    compress_level : int
        zlib level 0-9: 1 writes about twice as fast as the default 6, in a
        file about a third larger.

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
    data = encode_label_map(index, palette=palette, compress_level=compress_level)
    with atomic_path(p) as temp:
        temp.write_bytes(data)


def encode_label_map(
    index: np.ndarray, *, palette: np.ndarray | None = None, compress_level: int = 6
) -> bytes:
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
    im.save(out, format="PNG", compress_level=compress_level)
    return out.getvalue()


def write_rgb(path: str | os.PathLike[str], rgb: np.ndarray, *, compress_level: int = 6) -> None:
    """Write an ``H x W x 3`` ``uint8`` image as an RGB PNG, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.png`` file to create or replace.
    rgb : numpy.ndarray
        ``H x W x 3`` ``uint8``.
    compress_level : int
        zlib level 0-9 (see :func:`write_label_map`).

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
        im.save(temp, format="PNG", compress_level=compress_level)


# --------------------------------------------------------------------------- label indices


def _label_indices(p: Path, raw: np.ndarray, decoded: Decoded) -> np.ndarray:
    kind = decoded.kind
    if kind is Kind.PALETTE:
        if decoded.file_format == "GIF" and decoded.palette is not None:
            # GIF writers reorder the palette (Pillow saves a gray map as a palette of
            # the grays used): when every colour used is a gray, the grays are the values.
            used = decoded.palette[np.unique(raw)]
            if bool((used[:, 0] == used[:, 1]).all()) and bool((used[:, 1] == used[:, 2]).all()):
                return decoded.palette[:, 0][raw]
        return raw
    if kind is Kind.BILEVEL:
        return raw.astype(np.uint8)
    if kind in (Kind.GRAY_ALPHA, Kind.RGBA):
        alpha = raw[..., -1]
        opaque = np.iinfo(alpha.dtype).max if alpha.dtype.kind in "iu" else 1.0
        if decoded.has_alpha and not bool((alpha == opaque).all()):
            raise LabelReadError(
                p,
                "the label image has transparent pixels; a label map has no alpha channel "
                "(mark unlabeled pixels with 255 instead)",
            )
        raw = raw[..., 0] if kind is Kind.GRAY_ALPHA else raw[..., :3]
        kind = Kind.GRAY if kind is Kind.GRAY_ALPHA else Kind.RGB
    if kind is Kind.RGB:
        gray = bool((raw[..., 0] == raw[..., 1]).all()) and bool((raw[..., 1] == raw[..., 2]).all())
        if not gray:
            raise LabelReadError(
                p,
                "this is a colour-coded (RGB) label image, not a map of class indices; "
                "convert it to class indices with the label set's colour palette first "
                "(see segstudio.core.convert), or save it as a single-channel PNG",
            )
        raw = raw[..., 0]
        kind = Kind.GRAY
    if kind is not Kind.GRAY:
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
