"""The ``coco`` format: COCO JSON with RLE masks, one file per split.

``images/<split>/<name>`` byte for byte and ``annotations/instances_<split>.json``
(only for splits that have images): category id = class index + 1, one
annotation per class present in an image or, with ``instances``, per connected
component. Reading accepts polygons, uncompressed and compressed RLE (via
pycocotools, imported only when a COCO file is written or read), finds each
image under ``images/<split>/``, ``images/``, ``<split>/`` or the root, and
skips box-only annotations. Every entry is checked before pycocotools sees it
(sizes, RLE counts, polygon coordinates, file names that must stay inside the
dataset), so a broken file is a one-line error, never a crash or a memory blow-up.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import cv2
import numpy as np

from segstudio.core.errors import DatasetError, LabelSetError
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
from segstudio.io.images import pixel_limit, too_large

__all__ = ["CocoWriter", "ann_to_mask", "read_coco"]


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
    """Every image entry of ``annotations/*.json``, its mask drawn from its annotations.

    The whole structure is checked before any mask is drawn: lists where lists
    belong, a name for every category, a positive height and width within the
    pixel limit for every image, a file name inside the dataset folder (an
    absolute name or one with ``..`` is refused). Masks are checked before they
    are drawn: RLE sizes and counts must cover the image exactly, polygon
    points must be finite and near the image. Every fault is a
    :class:`DatasetError` naming the JSON file and the entry.
    """
    files = (
        sorted((source / "annotations").glob("*.json")) if (source / "annotations").is_dir() else []
    )
    if not files:
        raise DatasetError(f"{source}: no annotations/*.json")
    docs = [(f, _load_doc(f)) for f in files]
    cats: dict[int, dict[str, Any]] = {}
    cat_file: dict[int, Path] = {}
    for f, doc in docs:
        for c in _objects(f, doc, "categories"):
            cid = _int(c.get("id"))
            if cid is None:
                raise DatasetError(f"{f}: category {c.get('id')!r:.60} has no integer id")
            name = c.get("name")
            if not isinstance(name, str) or not name.strip():
                raise DatasetError(f"{f}: category {cid} has no name")
            cats.setdefault(cid, c)
            cat_file.setdefault(cid, f)
    if not cats:
        names = ", ".join(f.name for f in files)
        raise DatasetError(f"{source}: no categories in {names}; COCO masks need categories")
    order = sorted(cats)
    if override is not None:
        ls = override
        cat_to_index = {}
        for cid in order:
            try:
                cat_to_index[cid] = ls.index_of(cats[cid]["name"])
            except LabelSetError as exc:
                raise DatasetError(f"{cat_file[cid]}: category {cid}: {exc}") from exc
    else:
        rng = np.random.default_rng(0)
        classes = []
        used: set[tuple[int, int, int]] = {(0, 0, 0)}
        for cid in order:
            color = _category_color(cats[cid], cat_file[cid], w)
            while color is None or color in used:
                color = (
                    int(rng.integers(0, 256)),
                    int(rng.integers(0, 256)),
                    int(rng.integers(0, 256)),
                )
            used.add(color)
            classes.append(LabelClass(str(cats[cid]["name"]).strip(), color))
        ls = labelset_of("COCO", classes, (0, 0, 0), files[0])
        cat_to_index = {cid: i for i, cid in enumerate(order)}

    limit = pixel_limit()
    pairs: list[Pair] = []
    entries: dict[Path, _Entry] = {}
    for f, doc in docs:
        split = f.stem.removeprefix("instances_")
        by_image: dict[int, list[dict[str, Any]]] = {}
        for a in _objects(f, doc, "annotations"):
            image_id = _int(a.get("image_id"))
            if image_id is None:
                raise DatasetError(f"{f}: annotation {a.get('id')!r:.60} has no integer image_id")
            by_image.setdefault(image_id, []).append(a)
        for im in _objects(f, doc, "images"):
            image_id = _int(im.get("id"))
            if image_id is None or "file_name" not in im:
                raise DatasetError(f"{f}: an image entry has no file_name or id: {im!r:.120}")
            fname = _file_name(f, image_id, im["file_name"])
            where = f"{f}: image {image_id} ({fname})"
            h, w_ = _image_size(where, im, limit)
            candidates = [
                source / "images" / split / fname,
                source / "images" / fname,
                source / split / fname,
                source / fname,
            ]
            img = next((c for c in candidates if c.is_file()), None)
            key = f / str(image_id)  # a unique stand-in "mask path" per image entry
            if key in entries:
                raise DatasetError(f"{f}: two image entries have the id {image_id}")
            entries[key] = _Entry(where, h, w_, by_image.get(image_id, []))
            pairs.append(Pair(img, key, PurePosixPath(fname).name))

    def decode(key: Path) -> np.ndarray:
        entry = entries[key]
        h, w_ = entry.height, entry.width
        out = np.full((h, w_), UNLABELED, np.uint8)
        for a in entry.annotations:
            where = f"{entry.where}: annotation {a.get('id')!r:.40}"
            cid = _int(a.get("category_id"))
            if cid is None or cid not in cat_to_index:
                raise DatasetError(
                    f"{where} has category {a.get('category_id')!r:.40}, not one of the "
                    "file's categories"
                )
            seg = a.get("segmentation")
            if not seg:  # a box-only annotation: no mask to draw
                continue
            mask = ann_to_mask(seg, h, w_, where)
            out[mask > 0] = cat_to_index[cid]
        return out

    return ls, pairs, decode


# --------------------------------------------------------------------------- structure


@dataclass(frozen=True)
class _Entry:
    """An image entry whose size was checked, and its annotations."""

    where: str  # "<json>: image <id> (<file_name>)", for messages
    height: int
    width: int
    annotations: list[dict[str, Any]]


def _load_doc(f: Path) -> dict[str, Any]:
    """A COCO JSON file's top-level object; every way it can fail is a DatasetError."""
    try:
        doc = json.loads(f.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise DatasetError(
            f"{f}: not a COCO JSON file (not UTF-8 text: invalid byte at offset {exc.start})"
        ) from None
    except RecursionError:
        raise DatasetError(f"{f}: not a COCO JSON file (nested too deeply)") from None
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{f}: not a COCO JSON file ({exc})") from None
    except OSError as exc:
        raise DatasetError(f"{f}: cannot be read ({exc.strerror or exc})") from None
    if not isinstance(doc, dict):
        raise DatasetError(f"{f}: not a COCO JSON file (the top level is not an object)")
    return doc


def _objects(f: Path, doc: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """``doc[key]``: a list of objects (empty when absent)."""
    value = doc.get(key, [])
    if not isinstance(value, list):
        raise DatasetError(
            f"{f}: '{key}' must be a list of objects, not {type(value).__name__} {value!r:.40}"
        )
    for item in value:
        if not isinstance(item, dict):
            raise DatasetError(f"{f}: an entry of '{key}' is not an object: {item!r:.60}")
    return value


def _int(value: Any) -> int | None:
    """An integer id or size (an integral float too), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _file_name(f: Path, image_id: int, value: Any) -> str:
    """A relative file name inside the dataset folder; absolute names and ``..`` are refused."""
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise DatasetError(f"{f}: image {image_id} has no usable file_name ({value!r:.60})")
    posix, windows = PurePosixPath(value), PureWindowsPath(value)
    if posix.is_absolute() or windows.is_absolute() or windows.drive or windows.root:
        raise DatasetError(
            f"{f}: image {image_id} has the absolute file_name {value!r:.80}; names must be "
            "relative to the dataset folder"
        )
    if ".." in windows.parts:  # Windows parts split on both / and \
        raise DatasetError(
            f"{f}: image {image_id} has the file_name {value!r:.80}, which leads out of the "
            "dataset folder ('..'); names must stay inside it"
        )
    return value.replace("\\", "/")


def _image_size(where: str, im: dict[str, Any], limit: int) -> tuple[int, int]:
    """An image entry's (height, width): positive integers within the pixel limit."""
    h, w = _int(im.get("height")), _int(im.get("width"))
    if h is None or w is None:
        raise DatasetError(
            f"{where}: height and width must be integers, got "
            f"{im.get('height')!r:.20} x {im.get('width')!r:.20}"
        )
    if h <= 0 or w <= 0:
        raise DatasetError(f"{where}: height {h} and width {w} must be positive")
    if h * w > limit:
        raise DatasetError(f"{where}: the image is {too_large(w, h, limit)}")
    return h, w


def _category_color(c: dict[str, Any], f: Path, w: list[str]) -> tuple[int, int, int] | None:
    """A category's ``color`` as (r, g, b), None when absent or unusable (with a warning)."""
    color = c.get("color")
    if color is None:
        return None
    if (
        isinstance(color, list)
        and len(color) == 3
        and all(_int(v) is not None and 0 <= v <= 255 for v in color)
    ):
        return (int(color[0]), int(color[1]), int(color[2]))
    w.append(f"{f}: category {c.get('id')}: colour {color!r:.40} is not [r, g, b]; another used")
    return None


# --------------------------------------------------------------------------- masks

# Polygon points may lie this far outside the image, in image sizes; further out
# is a broken file (and would make pycocotools allocate without bound).
_POLY_MARGIN = 1.0
# pycocotools walks every polygon edge at 5x resolution: bound the walk.
_MAX_POLY_PERIMETER = 4_000_000


def ann_to_mask(seg: Any, h: int, w: int, where: str) -> np.ndarray:
    """An annotation's ``segmentation`` as an ``h x w`` ``uint8`` 0/1 mask, checked first.

    Polygons (a list of ``[x0, y0, x1, y1, ...]``) are drawn by pycocotools once
    their points are known finite and near the image; RLE (``{"size": [h, w],
    "counts": ...}``, a list or COCO's compressed string) is decoded here after
    checking that its size is the image's and its counts add up to ``h * w``.

    Raises
    ------
    DatasetError
        The segmentation is malformed; the message starts with ``where``.
    """
    if isinstance(seg, list):
        return _polygons_to_mask(seg, h, w, where)
    if isinstance(seg, dict):
        return _rle_to_mask(seg, h, w, where)
    raise DatasetError(f"{where}: 'segmentation' is neither polygons nor RLE: {seg!r:.60}")


def _polygons_to_mask(seg: list[Any], h: int, w: int, where: str) -> np.ndarray:
    polygons: list[list[float]] = []
    margin = _POLY_MARGIN * max(h, w)
    perimeter = 0.0
    for poly in seg:
        if not isinstance(poly, list) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in poly
        ):
            raise DatasetError(f"{where}: a polygon is not a list of numbers: {poly!r:.60}")
        if len(poly) < 6 or len(poly) % 2:
            raise DatasetError(
                f"{where}: a polygon needs at least 3 points as x, y pairs; it has "
                f"{len(poly)} number(s)"
            )
        pts = np.asarray(poly, np.float64).reshape(-1, 2)
        if not np.isfinite(pts).all():
            raise DatasetError(f"{where}: a polygon has a NaN or infinite coordinate")
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        if lo[0] < -margin or lo[1] < -margin or hi[0] > w + margin or hi[1] > h + margin:
            raise DatasetError(
                f"{where}: polygon points reach ({lo[0]:g}, {lo[1]:g})..({hi[0]:g}, {hi[1]:g}), "
                f"far outside the {w} x {h} image"
            )
        steps = np.abs(np.diff(np.vstack([pts, pts[:1]]), axis=0)).max(axis=1)
        perimeter += float(steps.sum())
        polygons.append([float(v) for v in poly])
    if perimeter > _MAX_POLY_PERIMETER:
        raise DatasetError(
            f"{where}: the polygons are {perimeter:,.0f} pixels long, more than "
            f"{_MAX_POLY_PERIMETER:,}; the file is likely broken"
        )
    if not polygons:
        return np.zeros((h, w), np.uint8)
    from pycocotools import mask as mask_utils

    rle = mask_utils.merge(mask_utils.frPyObjects(polygons, h, w))
    mask = np.asarray(mask_utils.decode(rle))
    return mask.reshape(h, w)


def _rle_to_mask(seg: dict[str, Any], h: int, w: int, where: str) -> np.ndarray:
    size = seg.get("size")
    if not isinstance(size, list) or len(size) != 2 or [_int(size[0]), _int(size[1])] != [h, w]:
        raise DatasetError(
            f"{where}: RLE size {size!r:.40} is not the image's [height, width] [{h}, {w}]"
        )
    raw = seg.get("counts")
    if isinstance(raw, str):
        counts = _rle_string_counts(raw, where)
    elif isinstance(raw, list) and all(_int(v) is not None for v in raw):
        counts = [int(v) for v in raw]
    else:
        raise DatasetError(f"{where}: RLE counts are neither a list of integers nor a string")
    if any(c < 0 for c in counts):
        raise DatasetError(f"{where}: RLE counts hold a negative run length")
    total = sum(counts)
    if total != h * w:
        raise DatasetError(
            f"{where}: RLE counts add up to {total:,} pixels, the {w} x {h} image has {h * w:,}"
        )
    runs = np.asarray(counts, np.int64)
    values = (np.arange(len(runs)) % 2).astype(np.uint8)  # runs alternate 0, 1, 0, ...
    # COCO runs go down the columns (Fortran order).
    return np.repeat(values, runs).reshape(w, h).T


def _rle_string_counts(text: str, where: str) -> list[int]:
    """COCO's compressed RLE string to run lengths (pycocotools' ``rleFrString``).

    Each count is a little-endian series of 5-bit groups in characters from
    ``'0'`` (48), with 0x20 meaning "more follows" and 0x10 in the last group the
    sign; from the third count on, each is stored as the difference to the count
    two before.
    """
    counts: list[int] = []
    value = shift = 0
    more = False
    for ch in text:
        c = ord(ch) - 48
        if not 0 <= c < 64:
            raise DatasetError(f"{where}: the RLE string holds the character {ch!r}")
        value |= (c & 0x1F) << shift
        shift += 5
        more = bool(c & 0x20)
        if more:
            if shift > 64:
                raise DatasetError(f"{where}: the RLE string holds a run length too large")
            continue
        if c & 0x10:
            value -= 1 << shift  # sign-extend
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
        value = shift = 0
    if more:
        raise DatasetError(f"{where}: the RLE string ends in the middle of a run length")
    return counts
