"""Conversion between colour label images and index label maps.

Colour label images (H x W x 3 RGB, one colour per class) are how many
datasets ship their annotations; SegStudio works on index label maps (H x W
``uint8``, class id or :data:`~segstudio.core.labelset.UNLABELED`).

Everything here is vectorised. RGB -> index packs each pixel into a 24-bit key
and reads the class id from a 2**24-entry lookup table (16 MiB, built once per
palette and cached), so the cost does not grow with the number of classes;
index -> RGB is one table lookup per pixel.
"""

from __future__ import annotations

import functools
from typing import Final, Literal

import cv2
import numpy as np

from segstudio.core.errors import LabelConversionError, UnknownColorsError, UnknownIndicesError
from segstudio.core.labelset import UNLABELED, Color, LabelSet

__all__ = [
    "Unknown",
    "check_index_map",
    "index_to_rgb",
    "remap_void",
    "rgb_to_index",
]

Unknown = Literal["error", "unlabeled"]
"""What to do with a colour or id the label set does not know: raise, or mark unlabeled."""

_MAX_LISTED: Final[int] = 20
"""How many unknown colours or values an error message lists before "and K more"."""

_LUT_CACHE_SIZE: Final[int] = 4
"""Palettes whose 16 MiB RGB -> index table stays cached."""


def _pack(rgb: np.ndarray) -> np.ndarray:
    """Pack the first three channels of an H x W x C ``uint8`` image into ``r<<16 | g<<8 | b``."""
    key = np.empty(rgb.shape[:2], dtype=np.uint32)
    np.left_shift(rgb[..., 0], 16, out=key, dtype=np.uint32)
    key |= np.left_shift(rgb[..., 1], 8, dtype=np.uint32)
    key |= rgb[..., 2]
    return key


def _color_key(color: Color) -> int:
    r, g, b = color
    return (r << 16) | (g << 8) | b


@functools.lru_cache(maxsize=_LUT_CACHE_SIZE)
def _rgb_lut(colors: tuple[Color, ...]) -> np.ndarray:
    """Return the read-only 2**24 table: packed colour -> class id, 255 for any other colour."""
    lut = np.full(1 << 24, UNLABELED, dtype=np.uint8)
    keys = np.array([_color_key(c) for c in colors], dtype=np.uint32)
    lut[keys] = np.arange(len(colors), dtype=np.uint8)
    lut.flags.writeable = False
    return lut


def _format_counts(items: list[str], total_kinds: int) -> str:
    text = ", ".join(items)
    if total_kinds > len(items):
        text += f" and {total_kinds - len(items)} more"
    return text


def _check_unknown_mode(unknown: str) -> None:
    if unknown not in ("error", "unlabeled"):
        raise LabelConversionError(f"unknown= must be 'error' or 'unlabeled', got {unknown!r}")


def _check_index_array(index: object, what: str = "label map") -> np.ndarray:
    if not isinstance(index, np.ndarray):
        raise LabelConversionError(f"{what} must be a numpy array, got {type(index).__name__}")
    if index.ndim != 2:
        raise LabelConversionError(
            f"{what} must be a 2-D (H x W) array of class ids, got shape {index.shape}"
        )
    if index.dtype != np.uint8:
        raise LabelConversionError(
            f"{what} must have dtype uint8 (class ids 0..254, {UNLABELED} = unlabeled), "
            f"got {index.dtype}"
        )
    return index


def _value_counts(values: np.ndarray) -> tuple[tuple[int, int], ...]:
    """Return ``(value, count)`` pairs of a 1-D array, most frequent first (ties by value)."""
    uniq, counts = np.unique(values, return_counts=True)
    order = np.lexsort((uniq, -counts))
    return tuple((int(uniq[i]), int(counts[i])) for i in order)


def rgb_to_index(rgb: np.ndarray, labelset: LabelSet, *, unknown: Unknown = "error") -> np.ndarray:
    """Convert a colour label image to an index label map.

    Parameters
    ----------
    rgb : numpy.ndarray
        ``uint8`` array of shape (H, W, 3) in RGB order, or (H, W, 4) whose
        alpha channel is ignored.
    labelset : LabelSet
        Gives the colour of each class id and the unlabeled colour.
    unknown : {"error", "unlabeled"}, default "error"
        What to do with colours that are neither a class colour nor the
        unlabeled colour: raise, or map them to :data:`UNLABELED`.

    Returns
    -------
    numpy.ndarray
        New ``uint8`` array of shape (H, W): class ids, and 255 where the pixel
        has the unlabeled colour (or an unknown one, with ``unknown="unlabeled"``).

    Raises
    ------
    UnknownColorsError
        With ``unknown="error"``, if some colours are not in the label set. The
        message lists each as ``(r, g, b)`` with its pixel count, most frequent
        first; ``counts`` holds all of them.
    LabelConversionError
        If ``rgb`` is not a ``uint8`` H x W x 3 or H x W x 4 array.
    """
    _check_unknown_mode(unknown)
    if not isinstance(rgb, np.ndarray):
        raise LabelConversionError(
            f"colour label image must be a numpy array, got {type(rgb).__name__}"
        )
    if rgb.ndim != 3 or rgb.shape[2] not in (3, 4):
        raise LabelConversionError(
            f"colour label image must have shape (H, W, 3) or (H, W, 4), got {rgb.shape}"
        )
    if rgb.dtype != np.uint8:
        raise LabelConversionError(
            f"colour label image must have dtype uint8, got {rgb.dtype}; "
            "16-bit or float images are not colour label images"
        )
    key = _pack(rgb)
    out = np.take(_rgb_lut(tuple(c.color for c in labelset.classes)), key)

    # A 255 in ``out`` is either the unlabeled colour or an unknown one.
    if unknown == "error" and np.count_nonzero(out == UNLABELED):
        bad = (out == UNLABELED) & (key != _color_key(labelset.unlabeled_color))
        if bad.any():
            counts = tuple(
                (((k >> 16) & 0xFF, (k >> 8) & 0xFF, k & 0xFF), n)
                for k, n in _value_counts(key[bad])
            )
            listed = [f"{c} x {n}" for c, n in counts[:_MAX_LISTED]]
            total = sum(n for _, n in counts)
            raise UnknownColorsError(
                f"{len(counts)} colour(s) in {total} pixel(s) are not in label set "
                f"{labelset.name!r} (colour x pixels): {_format_counts(listed, len(counts))}. "
                "Add them as classes, or convert with unknown='unlabeled' to leave them "
                "unlabeled.",
                counts,
            )
    return out


def index_to_rgb(
    index: np.ndarray, labelset: LabelSet, *, unknown: Unknown = "error"
) -> np.ndarray:
    """Paint an index label map in the label set's colours.

    Parameters
    ----------
    index : numpy.ndarray
        ``uint8`` array of shape (H, W) holding class ids and :data:`UNLABELED`.
    labelset : LabelSet
        Gives the colour of each class id and the unlabeled colour.
    unknown : {"error", "unlabeled"}, default "error"
        What to do with ids ``>= num_classes`` other than 255: raise, or paint
        them in the unlabeled colour.

    Returns
    -------
    numpy.ndarray
        New ``uint8`` array of shape (H, W, 3), RGB.

    Raises
    ------
    UnknownIndicesError
        With ``unknown="error"``, if the map holds ids the label set lacks; the
        message lists each with its pixel count.
    LabelConversionError
        If ``index`` is not a 2-D ``uint8`` array.
    """
    _check_unknown_mode(unknown)
    _check_index_array(index)
    if unknown == "error":
        _raise_out_of_range(
            index, labelset.num_classes, allowed=(UNLABELED,), what=f"label set {labelset.name!r}"
        )
    # palette() paints every id >= num_classes in the unlabeled colour. cv2.LUT
    # on a 3-channel copy of the map is ~2x faster than numpy's fancy indexing.
    table = labelset.palette().reshape(256, 1, 3)
    if index.size == 0:
        return np.empty((*index.shape, 3), dtype=np.uint8)
    return cv2.LUT(cv2.merge([index, index, index]), table)


def _raise_out_of_range(
    index: np.ndarray, num_classes: int, *, allowed: tuple[int, ...], what: str
) -> None:
    """Raise UnknownIndicesError if ``index`` holds values >= num_classes not in ``allowed``."""
    bad = index >= num_classes
    for value in allowed:
        if value >= num_classes:
            bad &= index != value
    if not bad.any():
        return
    counts = _value_counts(index[bad])
    listed = [f"{v} x {n}" for v, n in counts[:_MAX_LISTED]]
    allowed_text = " and ".join(str(v) for v in sorted(set(allowed)))
    raise UnknownIndicesError(
        f"label map holds {len(counts)} value(s) that are neither class ids of {what} "
        f"(0..{num_classes - 1}) nor {allowed_text} (value x pixels): "
        f"{_format_counts(listed, len(counts))}",
        counts,
    )


def check_index_map(index: np.ndarray, num_classes: int, *, void: int | None = None) -> None:
    """Check that a label map holds only class ids, :data:`UNLABELED` and ``void``.

    Parameters
    ----------
    index : numpy.ndarray
        ``uint8`` array of shape (H, W).
    num_classes : int
        Number of classes N; valid ids are 0..N-1.
    void : int, optional
        A dataset's own "no class" value (CamVid uses 11), also allowed.

    Raises
    ------
    UnknownIndicesError
        If other values occur; the message lists each with its pixel count.
    LabelConversionError
        If ``index`` is not a 2-D ``uint8`` array or ``num_classes`` is not 1..255.
    """
    _check_index_array(index)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int):
        raise LabelConversionError(f"num_classes must be an integer, got {num_classes!r}")
    if not 1 <= num_classes <= UNLABELED:
        raise LabelConversionError(f"num_classes must lie in 1..{UNLABELED}, got {num_classes}")
    allowed = (UNLABELED,) if void is None else (UNLABELED, _check_void(void))
    _raise_out_of_range(index, num_classes, allowed=allowed, what=f"the {num_classes} classes")


def _check_void(void: object) -> int:
    if isinstance(void, bool) or not isinstance(void, int | np.integer) or not 0 <= void <= 255:
        raise LabelConversionError(f"void must be an integer in 0..255, got {void!r}")
    return int(void)


def remap_void(index: np.ndarray, void: int) -> np.ndarray:
    """Return a copy of ``index`` in which the value ``void`` becomes :data:`UNLABELED`.

    Datasets mark unlabelled pixels with their own value (CamVid: 11); SegStudio
    uses 255 everywhere.

    Parameters
    ----------
    index : numpy.ndarray
        ``uint8`` array of shape (H, W).
    void : int
        The dataset's void value, 0..255.

    Returns
    -------
    numpy.ndarray
        New ``uint8`` array of the same shape.

    Raises
    ------
    LabelConversionError
        If ``index`` is not a 2-D ``uint8`` array or ``void`` is not in 0..255.
    """
    _check_index_array(index)
    lut = np.arange(256, dtype=np.uint8)
    lut[_check_void(void)] = UNLABELED
    if index.size == 0:
        return index.copy()
    return cv2.LUT(index, lut)
