"""The ``coco`` format: COCO JSON with RLE masks, one file per split.

``images/<split>/<name>`` byte for byte and ``annotations/instances_<split>.json``
(only for splits that have images): category id = class index + 1, one
annotation per class present in an image or, with ``instances``, per connected
component. Reading accepts polygons, uncompressed and compressed RLE (via
pycocotools, imported only when a COCO file is written or read), finds each
image under ``images/<split>/``, ``images/``, ``<split>/`` or the root, and
skips box-only annotations.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from segstudio.core.errors import DatasetError
from segstudio.core.labelset import UNLABELED, LabelClass, LabelSet
from segstudio.io.datasets.common import (
    SPLITS,
    ExportCtx,
    Item,
    Pair,
    Writer,
    copy_upright,
    labelset_of,
    write_text,
)

__all__ = ["CocoWriter", "read_coco"]


class CocoWriter(Writer):
    """Images byte for byte per split, one COCO JSON per split with images."""

    def begin(self, ctx: ExportCtx) -> None:
        super().begin(ctx)
        (ctx.root / "annotations").mkdir()
        categories = [
            {"id": i + 1, "name": c.name, "supercategory": "", "color": list(c.color)}
            for i, c in enumerate(ctx.ls.classes)
        ]
        for split in SPLITS:
            if ctx.splits[split]:
                (ctx.root / "images" / split).mkdir(parents=True)
                ctx.coco[split] = {
                    "info": {"description": "exported by SegStudio", "version": "1.0"},
                    "licenses": [],
                    "images": [],
                    "annotations": [],
                    "categories": categories,
                }
        self.next_ann = 1
        self.next_img = 1

    def write(self, ctx: ExportCtx, split: str, item: Item, mask: np.ndarray) -> None:
        from pycocotools import mask as mask_utils

        copy_upright(item.image, ctx.root / "images" / split / item.name)
        doc = ctx.coco[split]
        h, w = mask.shape
        image_id = self.next_img
        self.next_img += 1
        doc["images"].append({"id": image_id, "file_name": item.name, "width": w, "height": h})
        present = np.flatnonzero(np.bincount(mask.ravel(), minlength=256)[: ctx.ls.num_classes])
        for cls in present:
            binary = (mask == cls).astype(np.uint8)
            if ctx.options.instances:
                n, comp = cv2.connectedComponents(binary, connectivity=8)
                parts = [(comp == k).astype(np.uint8) for k in range(1, n)]
            else:
                parts = [binary]
            for part in parts:
                rle = mask_utils.encode(np.asfortranarray(part))
                bbox = [float(v) for v in mask_utils.toBbox(rle)]
                area = float(mask_utils.area(rle))
                counts = rle["counts"]
                doc["annotations"].append(
                    {
                        "id": self.next_ann,
                        "image_id": image_id,
                        "category_id": int(cls) + 1,
                        "segmentation": {
                            "size": [int(h), int(w)],
                            "counts": counts.decode("ascii")
                            if isinstance(counts, bytes)
                            else counts,
                        },
                        "area": area,
                        "bbox": bbox,
                        "iscrowd": 0,
                    }
                )
                self.next_ann += 1

    def finish(self, ctx: ExportCtx) -> None:
        for split, doc in ctx.coco.items():
            write_text(
                ctx.root / "annotations" / f"instances_{split}.json",
                json.dumps(doc, ensure_ascii=False),
            )

    def layout(self, ctx: ExportCtx) -> str:
        mode = (
            "one annotation per connected component (8-connectivity) of each class"
            if ctx.options.instances
            else "one annotation per class present in an image"
        )
        return (
            "COCO layout (written only for splits that have images).\n"
            "images/<split>/<name>                 the image files, byte for byte\n"
            "annotations/instances_<split>.json    COCO JSON: images (id, file_name, width, "
            "height), categories (id = class index + 1, name, color), annotations with "
            f"RLE masks (counts as a string), area, bbox, iscrowd 0; {mode}. Unlabeled "
            "pixels (255) belong to no annotation.\n"
            "classes.json                          index, name, colour of each class\n"
        )


def read_coco(source: Path, override: LabelSet | None, void: int | None, w: list[str]) -> Any:
    """Every image entry of ``annotations/*.json``, its mask drawn from its annotations."""
    files = (
        sorted((source / "annotations").glob("*.json")) if (source / "annotations").is_dir() else []
    )
    if not files:
        raise DatasetError(f"{source}: no annotations/*.json")
    docs: list[tuple[Path, dict[str, Any]]] = []
    for f in files:
        try:
            docs.append((f, json.loads(f.read_text(encoding="utf-8"))))
        except (OSError, json.JSONDecodeError) as exc:
            raise DatasetError(f"{f}: not a COCO JSON file ({exc})") from exc
    cats: dict[int, dict[str, Any]] = {}
    for f, doc in docs:
        if not isinstance(doc, dict):
            raise DatasetError(f"{f}: not a COCO JSON file (the top level is not an object)")
        try:
            for c in doc.get("categories", []):
                cats.setdefault(int(c["id"]), c)
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"{f}: a category has no usable id ({exc})") from exc
    if not cats:
        raise DatasetError(f"{source}: the COCO files have no categories")
    order = sorted(cats)
    if override is not None:
        ls = override
        cat_to_index = {cid: ls.index_of(cats[cid]["name"]) for cid in order}
    else:
        rng = np.random.default_rng(0)
        classes = []
        used: set[tuple[int, int, int]] = {(0, 0, 0)}
        for cid in order:
            color = cats[cid].get("color")
            color = tuple(int(v) for v in color) if color else None
            while color is None or color in used:
                color = tuple(int(v) for v in rng.integers(0, 256, 3))
            used.add(color)
            classes.append(LabelClass(str(cats[cid]["name"]), color))
        ls = labelset_of("COCO", classes, (0, 0, 0), files[0])
        cat_to_index = {cid: i for i, cid in enumerate(order)}

    pairs: list[Pair] = []
    anns_by_mask: dict[Path, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
    for f, doc in docs:
        split = f.stem.removeprefix("instances_")
        by_image: dict[int, list[dict[str, Any]]] = {}
        try:
            for a in doc.get("annotations", []):
                by_image.setdefault(int(a["image_id"]), []).append(a)
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"{f}: an annotation has no usable image_id ({exc})") from exc
        for im in doc.get("images", []):
            if not isinstance(im, dict) or "file_name" not in im or "id" not in im:
                raise DatasetError(f"{f}: an image entry has no file_name or id: {im!r:.120}")
            fname = str(im["file_name"])
            if Path(fname).is_absolute() or ".." in Path(fname).parts:
                fname = Path(fname).name  # look only inside the dataset folder
            candidates = [
                source / "images" / split / fname,
                source / "images" / fname,
                source / split / fname,
                source / fname,
            ]
            img = next((c for c in candidates if c.is_file()), None)
            key = f / str(im["id"])  # a unique stand-in "mask path" per image entry
            anns_by_mask[key] = (im, by_image.get(int(im["id"]), []))
            pairs.append(Pair(img, key, Path(fname).name))

    def decode(key: Path) -> np.ndarray:
        im, anns = anns_by_mask[key]
        try:
            h, w_ = int(im["height"]), int(im["width"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"image entry {im.get('id')}: no usable height/width") from exc
        out = np.full((h, w_), UNLABELED, np.uint8)
        for a in anns:
            try:
                cid = int(a["category_id"])
                seg = a["segmentation"]
                if not seg:  # a box-only annotation: no mask to draw
                    continue
                mask = _ann_to_mask(seg, h, w_)
                if mask.shape[:2] != (h, w_):
                    raise ValueError(f"mask is {mask.shape[:2]}, the image {h}x{w_}")
            except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
                raise DatasetError(
                    f"{key.parent.name}: annotation {a.get('id')} of image {im.get('id')} "
                    f"cannot be read ({type(exc).__name__}: {exc})"
                ) from exc
            if cid not in cat_to_index:
                raise DatasetError(
                    f"{key.parent.name}: annotation {a.get('id')} has category {cid}"
                )
            out[mask.reshape(h, w_) > 0] = cat_to_index[cid]
        return out

    return ls, pairs, decode


def _ann_to_mask(seg: Any, h: int, w: int) -> np.ndarray:
    """pycocotools' annToMask: polygons, uncompressed or compressed RLE."""
    from pycocotools import mask as mask_utils

    if isinstance(seg, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
    elif isinstance(seg.get("counts"), list):
        rle = mask_utils.frPyObjects(seg, h, w)
    else:
        counts = seg["counts"]
        rle = {
            "size": seg["size"],
            "counts": counts.encode("ascii") if isinstance(counts, str) else counts,
        }
    return mask_utils.decode(rle)
