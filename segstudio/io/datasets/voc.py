"""The ``voc`` format: the Pascal VOC segmentation layout (CVAT exports it too).

``JPEGImages/<stem>.jpg``, ``SegmentationClass/<stem>.png`` as palette PNGs
(pixel = class index, 255 = void; VOC's own void colour when the label set is
VOC's), and the stem lists in ``ImageSets/Segmentation/``. Reading pairs masks
with images by stem (:func:`voc_pairs`, which the CVAT reader shares).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import numpy as np

from segstudio.core.errors import DatasetError
from segstudio.core.labelset import UNLABELED, LabelSet, preset
from segstudio.io.datasets.common import (
    JPEG_QUALITY,
    LIST_LINES,
    SPLITS,
    ExportCtx,
    Item,
    Pair,
    Writer,
    copy_or_convert,
    dataset_classes,
    index_decoder,
    lines,
    mask_pairs,
    save_png,
    write_text,
)
from segstudio.io.datasets.layouts import match_stems

__all__ = ["VOC_VOID_COLOR", "VocWriter", "read_voc", "voc_pairs"]

VOC_VOID_COLOR: Final[tuple[int, int, int]] = (224, 224, 192)


def _is_voc(ls: LabelSet) -> bool:
    return ls.same_names(preset("voc"))


class VocWriter(Writer):
    """JPEG images, palette masks, ``ImageSets/Segmentation/*.txt``."""

    list_names = LIST_LINES

    def begin(self, ctx: ExportCtx) -> None:
        super().begin(ctx)
        for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
            (ctx.root / sub).mkdir(parents=True)
        self.palette = ctx.ls.palette()
        if _is_voc(ctx.ls):
            self.palette[UNLABELED] = VOC_VOID_COLOR

    def write(self, ctx: ExportCtx, split: str, item: Item, mask: np.ndarray) -> None:
        copy_or_convert(item.image, ctx.root / "JPEGImages" / f"{item.stem}.jpg", "jpeg")
        save_png(ctx.root / "SegmentationClass" / f"{item.stem}.png", mask, self.palette)

    def finish(self, ctx: ExportCtx) -> None:
        sets = ctx.root / "ImageSets" / "Segmentation"
        stems = {s: [ctx.items[n].stem for n in ctx.splits[s]] for s in SPLITS}
        for split in SPLITS:
            write_text(sets / f"{split}.txt", lines(stems[split]))
        write_text(sets / "trainval.txt", lines(stems["train"] + stems["val"]))

    def layout(self, ctx: ExportCtx) -> str:
        return (
            "Pascal VOC segmentation layout.\n"
            "JPEGImages/<stem>.jpg              images (JPEG files copied, others re-encoded at "
            f"quality {JPEG_QUALITY})\n"
            "SegmentationClass/<stem>.png       palette (mode P) PNG: pixel = class index, 255 = "
            "void/unlabeled; the palette holds the class colours\n"
            "ImageSets/Segmentation/train.txt val.txt trainval.txt test.txt   stems per split\n"
            "classes.json                       index, name, colour of each class\n"
        )


def voc_pairs(source: Path) -> list[Pair]:
    """The masks of ``SegmentationClass/`` and the same-stem images of ``JPEGImages/``."""
    match = match_stems(source / "JPEGImages", source / "SegmentationClass")
    if not match.labels:
        raise DatasetError(f"{source}: no SegmentationClass/ masks")
    return mask_pairs(match)


def read_voc(source: Path, override: LabelSet | None, void: int | None, w: list[str]) -> Any:
    """Palette PNGs read as class ids; VOC's classes when the dataset names none."""
    ls, vi = dataset_classes(source, override, preset("voc"))
    pairs = voc_pairs(source)
    return ls, pairs, index_decoder(void if void is not None else vi)
