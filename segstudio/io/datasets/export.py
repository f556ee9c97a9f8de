"""Dataset export: a project's labelled images as a folder in a format training code reads.

:func:`export_dataset` writes one of :data:`FORMATS` into a hidden temporary
folder next to ``out`` (``.{out.name}.tmp-XXXX``) and renames it into place at
the end, so ``out`` never holds half a dataset: a failure, or closing the
generator early (cancel), removes the temporary folder and leaves ``out`` as it
was. An existing non-empty ``out`` is refused unless ``overwrite``; then the two
folders are swapped so that ``out`` is never missing, and what a killed export
left beside ``out`` is put right by the next one (:mod:`~segstudio.io.datasets.swap`).
Everything that can be checked is checked before the first file is written:
missing images, unreadable masks, ids outside the label set, output names that
clash, names the format's list files cannot hold (a line break in any list; any
white space in CamVid's ``image annotation`` lines). Every dataset carries
``classes.json`` (index -> name -> colour) and a ``README.txt`` describing its
layout and which names it can hold.

The driver chooses the images, splits them and yields
:class:`~segstudio.core.jobs.Progress` after each; what goes where is
the format's writer (one module per format).
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from segstudio.core.errors import DatasetError, SegStudioError
from segstudio.core.jobs import Progress
from segstudio.core.labelset import UNLABELED, LabelSet
from segstudio.io.datasets.camvid import CamvidWriter
from segstudio.io.datasets.cityscapes import CityscapesWriter
from segstudio.io.datasets.coco import CocoWriter
from segstudio.io.datasets.common import (
    SPLITS,
    ExportCtx,
    Item,
    Writer,
    list_name_fault,
    list_names_note,
    shortlist,
    write_text,
)
from segstudio.io.datasets.index import IndexWriter
from segstudio.io.datasets.swap import new_temp_folder, put_in_place, recover_export, remove_folder
from segstudio.io.datasets.voc import VocWriter
from segstudio.io.images import natural_key
from segstudio.io.project import ImageStatus, Project

__all__ = ["FORMATS", "ExportOptions", "ExportReport", "export_dataset"]

_log = logging.getLogger(__name__)

FORMATS: Final[tuple[str, ...]] = ("index", "camvid", "voc", "cityscapes", "coco")
"""Formats :func:`export_dataset` writes."""

_WRITERS: Final[dict[str, type[Writer]]] = {
    "index": IndexWriter,
    "camvid": CamvidWriter,
    "voc": VocWriter,
    "cityscapes": CityscapesWriter,
    "coco": CocoWriter,
}


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
            raise DatasetError(f"the split shares must sum to 1, got {split} (sum {sum(split):g})")
        object.__setattr__(self, "split", split)
        if self.camvid_void is not None and (
            isinstance(self.camvid_void, bool)
            or not isinstance(self.camvid_void, int)
            or not 0 <= self.camvid_void <= 255
        ):
            raise DatasetError(f"camvid_void must be an integer 0..255, got {self.camvid_void!r}")


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
        Anything else worth knowing (also what was put right after an earlier
        export to ``out`` that was cut short).
    """

    out: Path
    format: str
    images: int
    splits: dict[str, int]
    skipped: tuple[str, ...]
    warnings: tuple[str, ...]


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


def _classes_table(ls: LabelSet) -> str:
    rows = [
        f"  {i:>3}  {c.color[0]:>3} {c.color[1]:>3} {c.color[2]:>3}  {c.name}"
        for i, c in enumerate(ls.classes)
    ]
    u = ls.unlabeled_color
    rows.append(f"  255  {u[0]:>3} {u[1]:>3} {u[2]:>3}  (unlabeled)")
    return "\n".join(rows)


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
    # first of all: an earlier export to out that was killed may have left it aside
    recovered = recover_export(out)
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
    writer = _writer_for(options.format)
    _check_names(items, options.format)
    _check_list_names(items, options.format, writer.list_names)
    _check_sources(project, items, ls)
    if not items:
        reason = "reviewed images" if not options.include_predicted else "labelled images"
        raise DatasetError(
            f"nothing to export: the project has no {reason}"
            + (f" ({len(skipped)} skipped)" if skipped else "")
        )
    splits = _split_names([i.name for i in items], options.split, options.seed)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = new_temp_folder(out)
    ctx = ExportCtx(tmp, ls, options, splits, {i.name: i for i in items})
    ctx.warnings.extend(recovered)
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
        write_text(tmp / "README.txt", _readme(ctx, writer.layout(ctx), writer.list_names))
        put_in_place(tmp, out)
    except BaseException:
        remove_folder(tmp)
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


def _select(project: Project, options: ExportOptions) -> tuple[list[Item], list[str]]:
    items: list[Item] = []
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
            items.append(Item(rec.name, Path(rec.name).stem, project.folder / rec.name, source))
    return items, skipped


def _check_names(items: Sequence[Item], fmt: str) -> None:
    by_stem: dict[str, list[str]] = {}
    for it in items:
        by_stem.setdefault(it.stem, []).append(it.name)
    clashes = [" and ".join(v) + f" -> {k}" for k, v in by_stem.items() if len(v) > 1]
    if clashes:
        raise DatasetError(
            f"{len(clashes)} output name clash(es) in the {fmt} export (images whose names "
            f"differ only in the extension): {shortlist(clashes)}; rename the images"
        )


def _check_list_names(items: Sequence[Item], fmt: str, rule: str | None) -> None:
    """Refuse names the format's list files cannot hold (see :func:`list_name_fault`)."""
    bad = [
        f"{it.name!r} ({fault})"
        for it in items
        if (fault := list_name_fault(it.stem, rule)) is not None
    ]
    if bad:
        raise DatasetError(
            f"{len(bad)} image name(s) cannot go into the list files of the {fmt} export, which "
            f"would read them back as other names: {shortlist(bad)}; rename the images, or "
            "export as coco or cityscapes, which keep every name"
        )


def _check_sources(project: Project, items: Sequence[Item], ls: LabelSet) -> None:
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
            + shortlist(problems)
        )


def _load_mask(project: Project, item: Item) -> np.ndarray:
    if item.source == "labels":
        mask = project.load_labels(item.name)
    else:
        pred = project.load_prediction(item.name)
        mask = None if pred is None else pred[0]
    if mask is None:
        raise DatasetError(f"{item.name}: its {item.source} disappeared during the export")
    return mask


def _writer_for(fmt: str) -> Writer:
    """A new writer per export, so per-export state is never shared."""
    return _WRITERS[fmt]()


def _readme(ctx: ExportCtx, layout: str, list_names: str | None) -> str:
    counts = ", ".join(f"{k} {len(v)}" for k, v in ctx.splits.items())
    o = ctx.options
    return (
        f"SegStudio dataset export, format {o.format!r}.\n\n"
        f"{layout}\n"
        f"{list_names_note(list_names)}"
        f"Images: {len(ctx.items)} ({counts}); split shares {o.split} with seed {o.seed} "
        "(names sorted, shuffled with numpy.random.default_rng(seed), cut by share).\n"
        "Only images a person marked reviewed"
        + (", in progress, or (as their prediction) predicted" if o.include_predicted else "")
        + " are included.\n\n"
        f"Classes of label set {ctx.ls.name!r} (index  R G B  name):\n{_classes_table(ctx.ls)}\n"
    )
