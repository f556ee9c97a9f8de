"""The ``index`` format: ``images/`` + ``labels/`` of single-channel class-id PNGs.

SegStudio's own plain layout, and the one the trainer reads best: its split
goes with it as ``train.txt`` / ``val.txt`` / ``test.txt`` (one stem per line),
which :func:`segstudio.training.data.from_folder` honours. The reader also
takes CamVid's ``<split>/`` + ``<split>annot/`` folders
(:func:`~segstudio.io.datasets.common.dataset_pairs`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from segstudio.core.labelset import LabelSet
from segstudio.io.datasets.common import (
    LIST_LINES,
    SPLITS,
    ExportCtx,
    Item,
    Writer,
    copy_upright,
    dataset_classes,
    dataset_pairs,
    index_decoder,
    lines,
    save_png,
    write_text,
)
from segstudio.io.datasets.layouts import IMAGES_DIR, LABELS_DIR

__all__ = ["IndexWriter", "read_index"]


class IndexWriter(Writer):
    """``images/<name>`` byte for byte, ``labels/<stem>.png``, the split lists."""

    list_names = LIST_LINES

    def begin(self, ctx: ExportCtx) -> None:
        super().begin(ctx)
        (ctx.root / IMAGES_DIR).mkdir()
        (ctx.root / LABELS_DIR).mkdir()

    def write(self, ctx: ExportCtx, split: str, item: Item, mask: np.ndarray) -> None:
        copy_upright(item.image, ctx.root / IMAGES_DIR / item.name)
        save_png(ctx.root / LABELS_DIR / f"{item.stem}.png", mask)

    def finish(self, ctx: ExportCtx) -> None:
        for split in SPLITS:
            write_text(
                ctx.root / f"{split}.txt", lines(ctx.items[n].stem for n in ctx.splits[split])
            )

    def layout(self, ctx: ExportCtx) -> str:
        return (
            "images/<name>            the image files, byte for byte as in the project\n"
            "labels/<stem>.png        8-bit single-channel PNG: pixel = class index, 255 = "
            "unlabeled\n"
            "train.txt val.txt test.txt   the stems of each split, one per line\n"
            "classes.json             the SegStudio label set (index, name, colour)\n"
        )


def read_index(source: Path, override: LabelSet | None, void: int | None, w: list[str]) -> Any:
    """Index masks with the classes of ``classes.json`` (or ``override``)."""
    ls, vi = dataset_classes(source, override)
    return ls, dataset_pairs(source, w), index_decoder(void if void is not None else vi)
