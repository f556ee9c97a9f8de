"""What the export and import drivers and the format modules share.

The writer protocol the export driver calls (:class:`Writer`, with its
:class:`ExportCtx` and :class:`Item`); the reader protocol the import driver
calls (:data:`Reader`, returning :class:`Pair` values and a decoder); and the
small file helpers several formats use. Nothing here knows a particular format.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final, TypeVar

import cv2
import numpy as np
from PIL import Image

from segstudio.core.convert import rgb_to_index
from segstudio.core.errors import DatasetError, ImageReadError, LabelSetError
from segstudio.core.jobs import Progress
from segstudio.core.labelset import UNLABELED, LabelClass, LabelSet, read_classes_file
from segstudio.io.datasets import layouts
from segstudio.io.images import read_image, read_label_map

if TYPE_CHECKING:
    from segstudio.io.datasets.export import ExportOptions

__all__ = [
    "JPEG_QUALITY",
    "LIST_LINES",
    "LIST_WORDS",
    "SPLITS",
    "VOID_NAMES",
    "ExportCtx",
    "Item",
    "Pair",
    "Progress",
    "Reader",
    "Writer",
    "copy_or_convert",
    "copy_upright",
    "dataset_classes",
    "dataset_pairs",
    "index_decoder",
    "labels_json",
    "labelset_of",
    "lines",
    "list_name_fault",
    "list_names_note",
    "make_class",
    "mask_pairs",
    "read_text_file",
    "rgb_decoder",
    "save_png",
    "shortlist",
    "write_text",
]

SPLITS: Final[tuple[str, str, str]] = layouts.SPLITS
JPEG_QUALITY: Final[int] = 95
MAX_LISTED: Final[int] = 20
VOID_NAMES: Final[frozenset[str]] = frozenset({"void", "unlabeled", "unlabelled"})
"""Class names that mean "no class" in a palette file: their colour is the unlabeled one."""

LIST_LINES: Final[str] = "lines"
"""A format whose list files hold one name per line (index, voc)."""
LIST_WORDS: Final[str] = "words"
"""A format whose list lines hold names as space-separated words (camvid's
``train/x.png trainannot/x.png``)."""
# what str.splitlines() breaks at: a reader in Python splits there, most others at \n
_LINE_BREAKS: Final[frozenset[str]] = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")
MAX_TEXT_BYTES: Final[int] = 16 * 1024 * 1024
"""A palette or label-map text file larger than this is refused unread (256 lines are a few kB)."""

T = TypeVar("T")


# --------------------------------------------------------------------------- helpers


def shortlist(items: Sequence[str], limit: int = MAX_LISTED) -> str:
    """The first ``limit`` items joined by ``; `` and how many more there are."""
    shown = "; ".join(items[:limit])
    if len(items) > limit:
        shown += f"; and {len(items) - limit} more"
    return shown


def write_text(path: Path, text: str) -> None:
    """Write UTF-8 text, making the parent folder (inside the temporary dataset folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def save_png(path: Path, arr: np.ndarray, palette: np.ndarray | None = None) -> None:
    """Write a PNG into the temporary dataset folder (the folder rename is the atomic step)."""
    im = Image.fromarray(arr)
    if palette is not None:
        im.putpalette(np.ascontiguousarray(palette, dtype=np.uint8).tobytes(), "RGB")
    im.save(path, format="PNG", compress_level=1)


def lines(items: Iterable[str]) -> str:
    """One item per line, with a final newline unless there are none."""
    text = "\n".join(items)
    return text + "\n" if text else ""


def list_name_fault(stem: str, rule: str | None) -> str | None:
    """Why ``stem`` cannot go into a list file of kind ``rule`` (None: it can).

    Line-based lists (:data:`LIST_LINES`) cannot hold a line break, and readers
    strip white space at either end of a line; CamVid's lines
    (:data:`LIST_WORDS`) separate their two paths by a space, so no white space
    at all. There is no escape these formats' readers understand, so such names
    are refused rather than written in a way that reads back as another name.
    """
    if rule is None:
        return None
    if any(c in _LINE_BREAKS for c in stem):
        return "a line break"
    if rule == LIST_WORDS and any(c.isspace() for c in stem):
        return "white space"
    if rule == LIST_LINES and stem != stem.strip():
        return "white space at the start or end"
    return None


def list_names_note(rule: str | None) -> str:
    """The README's sentence on which image names the format's list files hold."""
    if rule == LIST_WORDS:
        return (
            "Names: the list files separate paths by a space, so image names with white "
            "space or line breaks are refused by the export (rename such images).\n"
        )
    if rule == LIST_LINES:
        return (
            "Names: the list files hold one name per line, so image names with a line break "
            "or white space at either end are refused by the export (rename such images).\n"
        )
    return "Names: this format has no list files; every image name is kept as it is.\n"


def _exif_rotated(src: Path) -> bool:
    """Whether ``src`` carries an EXIF orientation other than upright."""
    try:
        with Image.open(src) as im:
            return int(im.getexif().get(0x0112, 1)) not in (0, 1)
    except (OSError, ValueError, SyntaxError):
        return False


def copy_upright(src: Path, dst: Path) -> None:
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


def copy_or_convert(src: Path, dst: Path, kind: str) -> None:
    """Copy ``src`` when it is already ``kind`` ("png" or "jpeg"), else re-encode it."""
    suffixes = {"png": (".png",), "jpeg": (".jpg", ".jpeg")}[kind]
    if src.suffix.lower() in suffixes:
        copy_upright(src, dst)
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


def labels_json(ls: LabelSet, void_index: int | None = None) -> str:
    """The ``classes.json`` every export carries (CamVid's layout when it names a void)."""
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


# --------------------------------------------------------------------------- export protocol


@dataclass
class Item:
    """One image going out: its project name, output stem, file, and mask source."""

    name: str
    stem: str
    image: Path
    source: str  # "labels" or "prediction"


@dataclass
class ExportCtx:
    """What a writer sees of the export in progress (``root`` is the temporary folder)."""

    root: Path
    ls: LabelSet
    options: ExportOptions
    splits: dict[str, list[str]]
    items: dict[str, Item]
    warnings: list[str] = field(default_factory=list)
    coco: dict[str, dict[str, Any]] = field(default_factory=dict)


class Writer:
    """One format's writer; a new one per export, so per-export state is never shared.

    The driver calls :meth:`begin`, then :meth:`write` for every image split by
    split, then :meth:`finish`, and puts :meth:`layout` into the README. Before
    anything is written it refuses names the format's list files cannot hold
    (:attr:`list_names`, see :func:`list_name_fault`).
    """

    #: The kind of list files the format writes: :data:`LIST_LINES`, :data:`LIST_WORDS`
    #: or None (no list files: any name goes).
    list_names: ClassVar[str | None] = None

    def begin(self, ctx: ExportCtx) -> None:
        write_text(ctx.root / "classes.json", labels_json(ctx.ls))

    def write(self, ctx: ExportCtx, split: str, item: Item, mask: np.ndarray) -> None:
        raise NotImplementedError

    def finish(self, ctx: ExportCtx) -> None:
        pass

    def layout(self, ctx: ExportCtx) -> str:
        raise NotImplementedError


# --------------------------------------------------------------------------- import protocol


@dataclass
class Pair:
    """One mask of a dataset and its image (None when the dataset lacks it)."""

    image: Path | None
    mask: Path
    name: str  # the image's file name in the project


Reader = Callable[[Path, LabelSet | None, int | None, list[str]], Any]
"""``read(source, override, void, warnings) -> (labelset, pairs, decode)``: one format's
reader. ``decode(pair.mask)`` gives the ``uint8`` class-id map of a pair."""


def read_text_file(path: Path, what: str) -> str:
    """A small UTF-8 text file of a dataset (a palette, a label map); every way it can
    fail is a :class:`DatasetError` naming the file."""
    try:
        size = path.stat().st_size
        if size > MAX_TEXT_BYTES:
            raise DatasetError(f"{path}: {size:,} bytes is too large for a {what}")
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(
            f"{path}: not UTF-8 text (invalid byte at offset {exc.start}); save the {what} as UTF-8"
        ) from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None


def make_class(where: str, name: str, color: tuple[int, int, int]) -> LabelClass:
    """A class read from line ``where`` of a palette file: a bad name or colour is a
    :class:`DatasetError` naming the line."""
    try:
        return LabelClass(name, color)
    except LabelSetError as exc:
        raise DatasetError(f"{where}: {exc}") from None


def labelset_of(
    name: str, classes: list[LabelClass], unlabeled: tuple[int, int, int] | None, where: Path
) -> LabelSet:
    """A dataset's label set; without an unlabeled colour, the first unused of a few."""
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


def dataset_classes(
    source: Path, override: LabelSet | None, default: LabelSet | None = None
) -> tuple[LabelSet, int | None]:
    """The classes to read a dataset with: ``override``, its ``classes.json``, or ``default``."""
    if override is not None:
        return override, None
    classes = layouts.classes_file(source)
    if classes is not None:
        return _load_classes(classes)
    if default is not None:
        return default, None
    raise DatasetError(
        f"{source}: no classes.json; give a classes file (--palette, or Palette in the window)"
    )


def _void_lut(void: int | None) -> np.ndarray | None:
    if void is None or void == UNLABELED:
        return None
    lut = np.arange(256, dtype=np.uint8)
    lut[void] = UNLABELED
    return lut


def index_decoder(void: int | None) -> Any:
    """Decode an index label map, its ``void`` value becoming 255."""
    lut = _void_lut(void)

    def decode(path: Path) -> np.ndarray:
        m = read_label_map(path)
        return m if lut is None else cv2.LUT(m, lut)

    return decode


def rgb_decoder(ls: LabelSet) -> Any:
    """Decode a colour-coded label map by the colours of ``ls``."""

    def decode(path: Path) -> np.ndarray:
        rgb = read_image(path).rgb
        return rgb_to_index(rgb, ls)

    return decode


def mask_pairs(match: layouts.StemMatch) -> list[Pair]:
    """One :class:`Pair` per label map of ``match``, with the image of its stem if any."""
    out = []
    for m in match.labels:
        img = match.image_by_stem.get(m.stem)
        out.append(Pair(img, m, img.name if img is not None else f"{m.stem}.png"))
    return out


def dataset_pairs(source: Path, warnings: list[str]) -> list[Pair]:
    """``images/`` + ``labels/``, or ``<split>/`` + ``<split>annot/`` layouts."""
    pairs: list[Pair] = []
    for folders in layouts.folder_pairs(source, need_images=False):
        match = layouts.match_stems(folders.images, folders.labels)
        pairs += mask_pairs(match)
        unlabeled = {p.stem for p in match.unlabeled}
        if unlabeled:
            warnings.append(
                f"{len(unlabeled)} image(s) in {folders.images.name}/ have no mask and were "
                "not imported"
            )
    if not pairs:
        raise DatasetError(
            f"{source}: found neither images/ + labels/ nor <split>/ + <split>annot/ folders"
        )
    return pairs
