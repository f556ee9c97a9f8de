"""Dataset layouts: which folders hold the images, which their label maps, and the splits.

The one answer for everyone who reads a dataset folder: the import
(:mod:`segstudio.io.datasets.imports`), the trainer
(:func:`segstudio.training.data.from_folder`) and ``segstudio eval``. Two folder
layouts are known, both with an optional ``classes.json`` at the root:

- ``images/`` + ``labels/``: SegStudio's ``index`` export, whose split is in
  ``train.txt`` / ``val.txt`` / ``test.txt`` (one stem per line);
- CamVid / SegNet: ``<split>/`` + ``<split>annot/`` for ``train``, ``val`` and
  ``test``.

Images and label maps pair by file stem (:func:`match_stems`). What a caller
does with a gap (an image without labels, labels without an image, two files of
one stem) is its own choice: the trainer refuses, the import warns, ``eval``
refuses only the first; so this module reports and never raises.

Format-specific layouts (VOC's ``JPEGImages/``, Cityscapes' ``gtFine/``, COCO's
``annotations/``) live with their format's reader.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Final

from segstudio.io.images import IMAGE_SUFFIXES, list_images

__all__ = [
    "CLASSES_FILE",
    "IMAGES_DIR",
    "LABELS_DIR",
    "SPLITS",
    "FolderPair",
    "StemMatch",
    "annot_dir",
    "classes_file",
    "folder_pairs",
    "locate_labels",
    "match_stems",
    "split_lists",
    "stem_clash",
]

SPLITS: Final[tuple[str, str, str]] = ("train", "val", "test")
"""The splits of a dataset, in the order they are written and read."""

IMAGES_DIR: Final[str] = "images"
LABELS_DIR: Final[str] = "labels"
CLASSES_FILE: Final[str] = "classes.json"


def annot_dir(split: str) -> str:
    """CamVid's name of the label folder of ``split`` (``train`` -> ``trainannot``)."""
    return f"{split}annot"


@dataclass(frozen=True)
class FolderPair:
    """A folder of images and the folder of their label maps (same file stems).

    Attributes
    ----------
    root : Path
        The dataset folder (where ``classes.json`` and split lists lie).
    images : Path
        The folder of images (it may be missing; see :attr:`complete`).
    labels : Path
        The folder of label maps.
    split : str or None
        The CamVid split (``train``, ``val``, ``test``; or the name of a split
        folder that ``eval`` was given); None for ``images/`` + ``labels/``.
    """

    root: Path
    images: Path
    labels: Path
    split: str | None = None

    @property
    def complete(self) -> bool:
        """Whether both folders exist."""
        return self.images.is_dir() and self.labels.is_dir()

    @property
    def classes(self) -> Path | None:
        """The dataset's ``classes.json``, None when it has none."""
        return classes_file(self.root)


def _flat(root: Path) -> FolderPair:
    return FolderPair(root, root / IMAGES_DIR, root / LABELS_DIR)


def _split(root: Path, split: str) -> FolderPair:
    return FolderPair(root, root / split, root / annot_dir(split), split)


def folder_pairs(root: Path, *, need_images: bool = True) -> list[FolderPair]:
    """The image/label folder pairs of a dataset folder.

    ``images/`` + ``labels/`` first, then ``<split>/`` + ``<split>annot/`` in
    :data:`SPLITS` order; each pair whose label folder exists and, with
    ``need_images``, whose image folder exists too. Empty when ``root`` has
    neither layout.
    """
    root = Path(root)
    candidates = [_flat(root)] + [_split(root, s) for s in SPLITS]
    return [p for p in candidates if (p.complete if need_images else p.labels.is_dir())]


def locate_labels(folder: Path) -> FolderPair | None:
    """The images and labels that a dataset FOLDER given to ``eval`` names.

    In this order: ``FOLDER/images`` + ``FOLDER/labels``; FOLDER as a split
    beside its labels (``camvid/val`` with ``camvid/valannot``, root
    ``camvid``); a CamVid root's ``val/`` + ``valannot/``. None when none fits.
    """
    folder = Path(folder)
    flat = _flat(folder)
    if flat.complete:
        return flat
    beside = _split(folder.parent, folder.name)
    if beside.labels.is_dir():
        return beside
    val = _split(folder, "val")
    return val if val.complete else None


def classes_file(root: Path) -> Path | None:
    """``root/classes.json`` when it is a file, else None."""
    path = Path(root) / CLASSES_FILE
    return path if path.is_file() else None


def split_lists(root: Path) -> tuple[list[str], list[str]] | None:
    """``train.txt`` and ``val.txt`` (one stem per line) of an exported dataset, if any.

    None when there is no ``train.txt``; a missing ``val.txt`` is an empty list.
    A line is one stem (SegStudio's and VOC's lists; it may hold spaces), or
    paths: one per line, or CamVid's ``train/x.png trainannot/x.png``, where each
    path counts by its stem. Images listed in ``test.txt`` (or in no list) are
    in neither list.
    """
    root = Path(root)
    if not (root / "train.txt").is_file():
        return None

    def stems(name: str) -> list[str]:
        path = root / name
        if not path.is_file():
            return []
        found: list[str] = []
        for line in path.read_text(encoding="utf-8").split("\n"):
            text = line.strip()
            words = text.split()
            if len(words) > 1 and all("/" in w for w in words):
                found += [PurePosixPath(w).stem for w in words]  # CamVid: image annotation
            elif "/" in text or Path(text).suffix.lower() in IMAGE_SUFFIXES:
                found.append(PurePosixPath(text).stem)  # a path
            elif text:
                found.append(text)  # a stem ("img.01" is one too)
        return found

    return stems("train.txt"), stems("val.txt")


# --------------------------------------------------------------------------- pairing by stem


@dataclass(frozen=True, eq=False)
class StemMatch:
    """The images and label maps of two folders, matched by file stem.

    Attributes
    ----------
    images : tuple of Path
        The image files, in natural order.
    labels : tuple of Path
        The label-map files, in natural order.

    Notes
    -----
    Where two files of one folder share a stem, the later one is the one
    matched; :func:`stem_clash` finds such files for callers that refuse them.
    """

    images: tuple[Path, ...]
    labels: tuple[Path, ...]

    @cached_property
    def image_by_stem(self) -> dict[str, Path]:
        """The image of each stem."""
        return {p.stem: p for p in self.images}

    @cached_property
    def label_by_stem(self) -> dict[str, Path]:
        """The label map of each stem."""
        return {p.stem: p for p in self.labels}

    @property
    def pairs(self) -> list[tuple[Path, Path]]:
        """``(image, label map)`` of every image that has one, in image order."""
        return [
            (p, self.label_by_stem[p.stem]) for p in self.images if p.stem in self.label_by_stem
        ]

    @property
    def unlabeled(self) -> list[Path]:
        """The images without a label map of their stem."""
        return [p for p in self.images if p.stem not in self.label_by_stem]

    @property
    def orphans(self) -> list[Path]:
        """The label maps without an image of their stem."""
        return [p for p in self.labels if p.stem not in self.image_by_stem]


def match_stems(images_dir: Path, labels_dir: Path) -> StemMatch:
    """List both folders (a missing one as empty) and match their files by stem.

    Raises
    ------
    ImageReadError
        A folder is a file or cannot be listed.
    """
    images_dir, labels_dir = Path(images_dir), Path(labels_dir)
    images = list_images(images_dir) if images_dir.is_dir() else []
    labels = list_images(labels_dir) if labels_dir.is_dir() else []
    return StemMatch(tuple(images), tuple(labels))


def stem_clash(files: Sequence[Path]) -> tuple[Path, Path] | None:
    """The first two of ``files`` that share a stem, in order; None when stems are unique."""
    seen: dict[str, Path] = {}
    for p in files:
        if p.stem in seen:
            return seen[p.stem], p
        seen[p.stem] = p
    return None
