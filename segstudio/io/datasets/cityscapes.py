"""The ``cityscapes`` format: ``leftImg8bit/`` + ``gtFine/``, one city called ``segstudio``.

Every image gets ``*_gtFine_labelTrainIds.png`` (class index, 255 unlabeled),
``*_gtFine_color.png`` and ``*_gtFine_labelIds.png``: the official Cityscapes
label ids (:data:`CITYSCAPES_LABEL_IDS`) when the label set is Cityscapes'
19-class one, else the class indices again. Reading prefers the train ids and
falls back to the label ids, mapped back for the Cityscapes label set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import cv2
import numpy as np

from segstudio.core.convert import index_to_rgb
from segstudio.core.errors import DatasetError
from segstudio.core.labelset import UNLABELED, LabelSet, preset
from segstudio.io.datasets.common import (
    ExportCtx,
    Item,
    Pair,
    Writer,
    copy_or_convert,
    dataset_classes,
    index_decoder,
    save_png,
)
from segstudio.io.images import read_label_map

__all__ = ["CITYSCAPES_CITY", "CITYSCAPES_LABEL_IDS", "CityscapesWriter", "read_cityscapes"]

CITYSCAPES_LABEL_IDS: Final[tuple[int, ...]] = (
    7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33,
)  # fmt: skip
"""Official Cityscapes label id of each of the 19 train ids (road 7 ... bicycle 33)."""

CITYSCAPES_CITY: Final[str] = "segstudio"


def _is_cityscapes(ls: LabelSet) -> bool:
    return ls.same_names(preset("cityscapes"))


class CityscapesWriter(Writer):
    """Images as PNG under ``leftImg8bit/``, three label PNGs each under ``gtFine/``."""

    def begin(self, ctx: ExportCtx) -> None:
        super().begin(ctx)
        self.official = _is_cityscapes(ctx.ls)
        self.lut = np.arange(256, dtype=np.uint8)
        if self.official:
            self.lut[:] = 0
            self.lut[: len(CITYSCAPES_LABEL_IDS)] = CITYSCAPES_LABEL_IDS
        else:
            ctx.warnings.append(
                "the label set is not the Cityscapes one: *_labelIds.png hold the class "
                "indices (255 unlabeled), not official Cityscapes label ids"
            )

    def write(self, ctx: ExportCtx, split: str, item: Item, mask: np.ndarray) -> None:
        img_dir = ctx.root / "leftImg8bit" / split / CITYSCAPES_CITY
        gt_dir = ctx.root / "gtFine" / split / CITYSCAPES_CITY
        img_dir.mkdir(parents=True, exist_ok=True)
        gt_dir.mkdir(parents=True, exist_ok=True)
        copy_or_convert(item.image, img_dir / f"{item.stem}_leftImg8bit.png", "png")
        save_png(gt_dir / f"{item.stem}_gtFine_labelIds.png", cv2.LUT(mask, self.lut))
        save_png(gt_dir / f"{item.stem}_gtFine_labelTrainIds.png", mask)
        save_png(gt_dir / f"{item.stem}_gtFine_color.png", index_to_rgb(mask, ctx.ls))

    def layout(self, ctx: ExportCtx) -> str:
        ids = (
            "official Cityscapes label ids (road 7 ... bicycle 33; unlabeled 0)"
            if self.official
            else "the class index (255 = unlabeled): this label set is not Cityscapes', so "
            "there are no official label ids"
        )
        return (
            "Cityscapes layout, one city called 'segstudio'.\n"
            "leftImg8bit/<split>/segstudio/<stem>_leftImg8bit.png      images (PNG)\n"
            f"gtFine/<split>/segstudio/<stem>_gtFine_labelIds.png      {ids}\n"
            "gtFine/<split>/segstudio/<stem>_gtFine_labelTrainIds.png  class index (train id), "
            "255 = unlabeled\n"
            "gtFine/<split>/segstudio/<stem>_gtFine_color.png          the labels colour-coded\n"
            "classes.json                                              index, name, colour\n"
        )


def read_cityscapes(source: Path, override: LabelSet | None, void: int | None, w: list[str]) -> Any:
    """Every ``gtFine/**`` train-id PNG (else label-id PNG) and its ``leftImg8bit`` image."""
    ls, _ = dataset_classes(source, override, preset("cityscapes"))
    gt = source / "gtFine"
    if not gt.is_dir():
        raise DatasetError(f"{source}: no gtFine/ folder")
    train_ids = sorted(gt.rglob("*_gtFine_labelTrainIds.png"))
    suffix = "_gtFine_labelTrainIds"
    decode = index_decoder(void)
    if not train_ids:
        train_ids = sorted(gt.rglob("*_gtFine_labelIds.png"))
        suffix = "_gtFine_labelIds"
        if _is_cityscapes(ls):
            lut = np.full(256, UNLABELED, np.uint8)
            lut[list(CITYSCAPES_LABEL_IDS)] = np.arange(len(CITYSCAPES_LABEL_IDS))

            def decode(path: Path) -> np.ndarray:
                return cv2.LUT(read_label_map(path), lut)

    pairs: list[Pair] = []
    for m in train_ids:
        rel = m.parent.relative_to(gt)
        stem = m.name[: -len(suffix) - 4]
        img = source / "leftImg8bit" / rel / f"{stem}_leftImg8bit.png"
        pairs.append(Pair(img if img.is_file() else None, m, f"{stem}.png"))
    return ls, pairs, decode
