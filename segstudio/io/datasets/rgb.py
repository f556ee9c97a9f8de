"""The ``rgb`` format (import only): colour-coded masks and a palette.

The folders are those of ``index`` or CamVid (see
:func:`~segstudio.io.datasets.common.dataset_pairs`); the colours come from the
``palette`` given, else from the dataset's ``label_colors.txt`` or
``classes.json``. A colour no class has is an error that lists every such colour
with its pixel count.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from segstudio.core.errors import DatasetError
from segstudio.core.labelset import LabelSet
from segstudio.io.datasets.camvid import read_palette
from segstudio.io.datasets.common import dataset_pairs, rgb_decoder

__all__ = ["read_rgb"]


def read_rgb(source: Path, override: LabelSet | None, void: int | None, w: list[str]) -> Any:
    """Colour masks decoded by the palette (``void`` does not apply)."""
    if override is None:
        for cand in ("label_colors.txt", "classes.json"):
            if (source / cand).is_file():
                override = read_palette(source / cand)
                break
        else:
            raise DatasetError(
                f"{source}: an rgb import needs a palette (label_colors.txt or a classes JSON)"
            )
    return override, dataset_pairs(source, w), rgb_decoder(override)
