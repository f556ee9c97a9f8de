"""The ``cvat`` format (import only): CVAT's "Segmentation mask 1.1" export.

VOC folders (:func:`~segstudio.io.datasets.voc.voc_pairs`) whose masks are
colour-coded by ``labelmap.txt`` (``name:r,g,b:parts:actions``); the
``background`` class, black, is SegStudio's unlabeled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from segstudio.core.errors import DatasetError
from segstudio.core.labelset import LabelClass, LabelSet
from segstudio.io.datasets.common import (
    VOID_NAMES,
    labelset_of,
    make_class,
    read_text_file,
    rgb_decoder,
)
from segstudio.io.datasets.voc import voc_pairs

__all__ = ["parse_labelmap", "read_cvat"]


def read_cvat(source: Path, override: LabelSet | None, void: int | None, w: list[str]) -> Any:
    """Colour masks decoded by ``labelmap.txt`` (or ``override``)."""
    labelmap = source / "labelmap.txt"
    if override is not None:
        ls = override
    elif labelmap.is_file():
        ls = parse_labelmap(labelmap)
    else:
        raise DatasetError(f"{source}: no labelmap.txt (CVAT 'Segmentation mask 1.1' export)")
    pairs = voc_pairs(source)
    return ls, pairs, rgb_decoder(ls)


def parse_labelmap(path: Path) -> LabelSet:
    """CVAT ``labelmap.txt``: ``name:r,g,b:parts:actions``; ``background`` black = unlabeled.

    Raises
    ------
    DatasetError
        The file cannot be read, is not UTF-8 text, or a line is malformed; the
        message names the file (and the line).
    """
    classes: list[LabelClass] = []
    unlabeled: tuple[int, int, int] | None = None
    for n, line in enumerate(read_text_file(path, "CVAT labelmap").splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        fields = text.split(":")
        try:
            name = fields[0].strip()
            r, g, b = (int(v) for v in fields[1].split(","))
        except (ValueError, IndexError) as exc:
            raise DatasetError(f"{path}:{n}: expected 'name:r,g,b:parts:actions'") from exc
        if not all(0 <= v <= 255 for v in (r, g, b)):
            raise DatasetError(f"{path}:{n}: colour {r},{g},{b} is not r,g,b in 0..255")
        if name.casefold() in {"background", *VOID_NAMES}:
            unlabeled = (r, g, b)
        else:
            classes.append(make_class(f"{path}:{n}", name, (r, g, b)))
    if not classes:
        raise DatasetError(f"{path}: no classes besides background")
    return labelset_of("CVAT", classes, unlabeled, path)
