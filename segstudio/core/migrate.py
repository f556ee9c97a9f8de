"""Class migration of label maps: 256-entry lookup tables and applying them.

When classes are deleted, merged or reordered, every stored label map and the
open image must be renumbered the same way. Each such change is a ``uint8``
table of 256 entries (``lut[old] = new``; 255, unlabeled, stays 255) built
here, and applied with :func:`apply_lut` (one cv2.LUT pass, about 1 ns a
pixel). The editor migrates the open map and its undo history with
:meth:`segstudio.core.edit.LabelEditor.remap`; the project store renumbers the
files on disk with the same table.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping

import cv2
import numpy as np

from segstudio.core.labelset import MAX_CLASSES, UNLABELED

__all__ = [
    "apply_lut",
    "check_lut",
    "check_value",
    "lut_delete",
    "lut_merge",
    "lut_move",
    "remap_lut",
]


def check_value(value: object) -> int:
    """Return ``value`` as an int if it is a label value 0..255 (255 is unlabeled).

    Raises
    ------
    TypeError
        If ``value`` is not an integer (a bool is refused).
    ValueError
        If it lies outside 0..255.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"value must be an integer 0..255 or a uint8 array, got {value!r}")
    if not 0 <= int(value) <= 255:
        raise ValueError(f"value must lie in 0..255, got {value}")
    return int(value)


def check_lut(lut: object) -> np.ndarray:
    """Return ``lut`` (contiguous) if it is a class-migration table: 256 ``uint8`` values.

    Raises
    ------
    ValueError
        For any other array or object.
    """
    if not isinstance(lut, np.ndarray) or lut.dtype != np.uint8 or lut.shape != (256,):
        got = (
            f"shape {lut.shape} dtype {lut.dtype}"
            if isinstance(lut, np.ndarray)
            else type(lut).__name__
        )
        raise ValueError(f"the class lookup table must be 256 uint8 values, got {got}")
    return np.ascontiguousarray(lut)


def _check_num_classes(num_classes: int) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral):
        raise TypeError(f"number of classes must be an int, got {num_classes!r}")
    if not 1 <= num_classes <= MAX_CLASSES:
        raise ValueError(f"number of classes must lie in 1..{MAX_CLASSES}, got {num_classes}")
    return int(num_classes)


def _check_class(index: int, num_classes: int, what: str) -> int:
    if isinstance(index, bool) or not isinstance(index, numbers.Integral):
        raise TypeError(f"{what} must be an int class id, got {index!r}")
    if not 0 <= index < num_classes:
        raise ValueError(f"{what} {index} is not a class id 0..{num_classes - 1}")
    return int(index)


def _identity() -> np.ndarray:
    return np.arange(256, dtype=np.uint8)


def remap_lut(mapping: Mapping[int, int], num_old: int) -> np.ndarray:
    """Build a 256-entry class-migration table from ``{old id: new id}``.

    Parameters
    ----------
    mapping : Mapping[int, int]
        Old class ids (0..num_old-1) to new values (0..255; 255 unlabels).
    num_old : int
        Number of classes before the migration.

    Returns
    -------
    numpy.ndarray
        ``uint8`` array of shape (256,): ``lut[old]`` is the new value. Ids not
        in ``mapping`` map to themselves, and 255 stays 255.
    """
    num_old = _check_num_classes(num_old)
    lut = _identity()
    for old, new in mapping.items():
        old = _check_class(old, num_old, "old class")
        lut[old] = check_value(new)
    return lut


def apply_lut(labels: np.ndarray, lut: np.ndarray, *, out: np.ndarray | None = None) -> np.ndarray:
    """Return ``lut[labels]`` for a ``uint8`` label map (cv2.LUT, about 1 ns a pixel).

    Parameters
    ----------
    labels : numpy.ndarray
        ``uint8`` label map of any shape.
    lut : numpy.ndarray
        256-entry ``uint8`` table.
    out : numpy.ndarray, optional
        Array of the same shape and dtype to write into; may be ``labels``
        itself (in place).

    Returns
    -------
    numpy.ndarray
        ``out`` if given, else a new array.
    """
    lut = check_lut(lut)
    if not isinstance(labels, np.ndarray) or labels.dtype != np.uint8:
        raise ValueError(f"labels must be a uint8 array, got {getattr(labels, 'dtype', labels)}")
    if out is not None and (out.shape != labels.shape or out.dtype != np.uint8):
        raise ValueError(f"out must be uint8 of shape {labels.shape}, got {out.dtype} {out.shape}")
    contiguous = labels.flags.c_contiguous and (out is None or out.flags.c_contiguous)
    if labels.size == 0 or labels.ndim != 2 or not contiguous:
        # np.take buffers when out overlaps labels, so in place is safe here too.
        return np.take(lut, labels, out=out)
    if out is None:
        return cv2.LUT(labels, lut)
    result = cv2.LUT(labels, lut, dst=out)
    if result is not out:  # never expected; keep ``out`` authoritative
        np.copyto(out, result)
    return out


def lut_delete(num_classes: int, index: int) -> np.ndarray:
    """Table for deleting class ``index``: its pixels become unlabeled, higher ids move down 1."""
    n = _check_num_classes(num_classes)
    index = _check_class(index, n, "deleted class")
    lut = _identity()
    lut[index] = UNLABELED
    lut[index + 1 : n] = np.arange(index, n - 1, dtype=np.uint8)
    return lut


def lut_merge(num_classes: int, source: int, target: int) -> np.ndarray:
    """Table for merging class ``source`` into ``target``; ids above ``source`` move down 1.

    ``source`` pixels get ``target``'s id after the shift (``target - 1`` when
    ``target > source``).
    """
    n = _check_num_classes(num_classes)
    source = _check_class(source, n, "source class")
    target = _check_class(target, n, "target class")
    if source == target:
        raise ValueError(f"cannot merge class {source} into itself")
    lut = _identity()
    lut[source + 1 : n] = np.arange(source, n - 1, dtype=np.uint8)
    lut[source] = lut[target]
    return lut


def lut_move(num_classes: int, src: int, dst: int) -> np.ndarray:
    """Table for moving class ``src`` to position ``dst``; the classes between shift by 1.

    Same as ``classes.insert(dst, classes.pop(src))`` on the list of classes.
    """
    n = _check_num_classes(num_classes)
    src = _check_class(src, n, "moved class")
    dst = _check_class(dst, n, "destination")
    order = list(range(n))
    order.insert(dst, order.pop(src))
    lut = _identity()
    lut[np.array(order, dtype=np.intp)] = np.arange(n, dtype=np.uint8)
    return lut
