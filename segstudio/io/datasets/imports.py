"""Dataset import: a labelled dataset into a project, all or nothing.

:func:`import_dataset` reads one of :data:`IMPORT_FORMATS` and applies whole or
not at all: every mask is read, converted to class ids and validated first
(unknown colours or ids are collected across all files and reported in one
:class:`DatasetError` with pixel counts), image names are checked against the
project folder, and only then are images copied and the labels stored with
:meth:`Project.import_labels <segstudio.io.project.Project.import_labels>`,
which commits every label in one transaction. The copies are made in a staging
folder under ``.segstudio`` and moved in just before that commit; when the
import fails, is cancelled or is killed, the copies come back out (after a kill:
at the next import, see :mod:`~segstudio.io.datasets.staging`), so the project
gains every image with its labels or none.

Finding the masks, their images and the classes is the format's reader (one
module per format); this driver does the checking, the mapping onto the
project's classes, the copying and the storing.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import cv2
import numpy as np

from segstudio.core.errors import (
    DatasetError,
    ImageReadError,
    LabelSetError,
    SegStudioError,
    UnknownColorsError,
)
from segstudio.core.jobs import Progress
from segstudio.core.labelset import UNLABELED, LabelSet
from segstudio.io.datasets.camvid import read_camvid, read_palette
from segstudio.io.datasets.cityscapes import read_cityscapes
from segstudio.io.datasets.coco import read_coco
from segstudio.io.datasets.common import Pair, Reader, shortlist
from segstudio.io.datasets.cvat import read_cvat
from segstudio.io.datasets.index import read_index
from segstudio.io.datasets.rgb import read_rgb
from segstudio.io.datasets.staging import Staging, sweep_import_staging
from segstudio.io.datasets.voc import read_voc
from segstudio.io.images import read_image
from segstudio.io.project import Project

__all__ = ["IMPORT_FORMATS", "ImportReport", "import_dataset"]

#: Where a refusal says how to replace labels: the command line's flag or the window's
#: checkbox is put in when the error is raised (no file name holds a NUL).
REPLACE_HINT = "\0replace\0"

_log = logging.getLogger(__name__)

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

_READERS: Final[dict[str, Reader]] = {
    "index": read_index,
    "rgb": read_rgb,
    "voc": read_voc,
    "camvid": read_camvid,
    "cvat": read_cvat,
    "cityscapes": read_cityscapes,
    "coco": read_coco,
}


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
        raise DatasetError(f"the void value (--void) must be 0..255, got {void}")
    warnings: list[str] = []
    # an import killed earlier is undone (or finished) before anything is looked at
    warnings += sweep_import_staging(project)
    override = read_palette(Path(palette)) if palette is not None else None

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
    converted: list[tuple[Pair, np.ndarray]] = []
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
            f"{len(bad_files)} file(s) ({shortlist(bad_files, 5)}) are no class of {ls.name!r} "
            "(colour x pixels): " + shortlist(listed),
        )
    if unknown_ids:
        listed = [f"{v} x {n}" for v, n in unknown_ids.most_common()]
        problems.insert(
            0,
            f"{len(unknown_ids)} value(s) in {sum(unknown_ids.values())} pixel(s) of "
            f"{len(bad_files)} file(s) ({shortlist(bad_files, 5)}) are neither class ids of "
            f"{ls.name!r} "
            f"(0..{ls.num_classes - 1}) nor unlabeled (value x pixels): "
            + shortlist(listed)
            + (" (set void for the dataset's void value)" if void is None else ""),
        )

    # 2. Image names against the project folder.
    to_copy: list[Pair] = []
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
            + shortlist(clashes)
        )
    if not replace:
        names = {r.name: r for r in project.images()}
        painted = [
            pair.name for pair, _ in converted if pair.name in names and names[pair.name].has_labels
        ]
        if painted:
            problems.append(
                f"{len(painted)} image(s) already hold labels that the import would replace "
                f"({REPLACE_HINT}): " + shortlist(painted)
            )
    elif any(r.has_labels for r in project.images() if r.name in {p.name for p, _ in converted}):
        warnings.append("labels of images that already had some were replaced by the import")
    if problems:
        text = (
            f"cannot import {source} ({len(problems)} problem(s); the project was not "
            "changed): " + shortlist(problems, 10)
        )
        raise DatasetError(
            text.replace(REPLACE_HINT, "add --replace to do so"),
            window=text.replace(
                REPLACE_HINT, "tick 'Replace labels of images that already have some' to do so"
            ),
        )

    # 3. Stage the copies, move them in, store every label in one transaction: all
    #    or nothing, also under kill -9 (see segstudio.io.datasets.staging).
    done = len(pairs)
    labels = [(p.name, m) for p, m in converted]
    if not to_copy:
        project.scan()
        stored = project.import_labels(labels, labelset=target, user=user)
    else:
        with Staging(project) as staging:
            for pair in to_copy:
                assert pair.image is not None
                staging.copy(pair.image, pair.name)
                done += 1
                yield Progress(done, total, pair.name, "copied")
            staging.stage()
            staging.move_in()
            project.scan()
            stored = project.import_labels(labels, labelset=target, user=user, token=staging.token)
            staging.committed = True
    _log.info("imported %d labels (%d new images) from %s", stored, len(to_copy), source)
    return ImportReport(images=len(to_copy), labels=stored, classes=ls, warnings=tuple(warnings))


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
