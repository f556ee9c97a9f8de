"""Training data: which images train, which validate, and how their labels load.

A :class:`TrainingData` is a frozen snapshot of two tuples of :class:`Sample`
(training and validation) and the label set their class ids refer to. It comes
from a SegStudio project (:func:`from_project`), from a dataset folder of
images and index label maps (:func:`from_folder`), or from either, told apart
by the ``.segstudio`` folder (:func:`load_source`).

Label maps follow the rest of SegStudio: ``uint8``, class ids ``0..N-1`` and
255 (:data:`~segstudio.core.labelset.UNLABELED`) for pixels nobody labelled.
Training and metrics ignore 255, so a few scribbles on an image are enough to
train on. A dataset's own void value (CamVid's 11) becomes 255 as it loads.

Project labels are read into memory when the snapshot is taken, so a person
may keep painting (or the project may renumber its classes) while a model
trains on the snapshot; images are read from disk as they are needed.

Which labelled images validate is decided by a hash of each image's name
(:func:`hash_split`), so the choice is deterministic and an image keeps its
side when others are added.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from segstudio.core.convert import remap_void
from segstudio.core.errors import LabelSetError, SegStudioError, TrainingError
from segstudio.core.labelset import UNLABELED, LabelSet, read_void_index
from segstudio.io.datasets.layouts import (
    classes_file,
    folder_pairs,
    match_stems,
    split_lists,
    stem_clash,
)
from segstudio.io.images import read_image, read_label_map

if TYPE_CHECKING:
    from segstudio.io.project import Project

__all__ = [
    "MAX_CLASS_WEIGHT",
    "Sample",
    "TrainingData",
    "check_labels",
    "from_folder",
    "from_project",
    "hash_split",
    "load_source",
    "median_frequency_weights",
]

log = logging.getLogger(__name__)

#: Median-frequency class weights are clipped to this, so that a class with a
#: handful of scribbled pixels cannot dominate the loss (CamVid's largest is 9.6).
MAX_CLASS_WEIGHT = 20.0

_SHOWN = 5  # names listed in an error message before "and K more"


def _listed(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


@dataclass(frozen=True, eq=False)
class Sample:
    """One labelled image, loaded lazily.

    Attributes
    ----------
    name : str
        The image's name (a project's image name, or the file name in a dataset).
    image_path : Path
        The image file.
    labels : numpy.ndarray or None
        ``H x W`` ``uint8`` labels held in memory (255 = unlabeled); None when
        they are read from ``label_path``.
    label_path : Path or None
        A label-map file, read when ``labels`` is None.
    void : int or None
        A value of the label file that means "no class" and becomes 255.
    weight_map : numpy.ndarray or None
        Per-pixel loss weights (``H x W`` float16), or None for all 1.0. Projects
        give pixels a person corrected (where the labels differ from the stored
        prediction) a higher weight.
    replayed : bool
        The labels are a model's own sure answers on an unlabelled image
        (replay), not a person's; a trained model's lineage counts such images
        apart.

    Notes
    -----
    Equality is identity (the arrays are not compared). Treat the arrays as
    read-only.
    """

    name: str
    image_path: Path
    labels: np.ndarray | None = None
    label_path: Path | None = None
    void: int | None = None
    weight_map: np.ndarray | None = None
    replayed: bool = False

    def load_labels(self) -> np.ndarray:
        """Return the ``H x W`` ``uint8`` label map, the void value already 255.

        Raises
        ------
        TrainingError
            The sample has neither labels nor a label file.
        ImageReadError
            The label file cannot be read.
        """
        if self.labels is not None:
            return self.labels
        if self.label_path is None:
            raise TrainingError(f"{self.name}: the sample has no labels")
        labels = read_label_map(self.label_path)
        if self.void is not None and self.void != UNLABELED:
            labels = remap_void(labels, self.void)
        return labels

    def load(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Read the image and its labels.

        Returns
        -------
        tuple
            ``(rgb, labels, weights)``: ``H x W x 3`` ``uint8``, ``H x W`` ``uint8``
            (255 = unlabeled) and the ``H x W`` weight map or None.

        Raises
        ------
        TrainingError
            The label map (or weight map) and the image differ in size.
        ImageReadError
            The image or label file cannot be read.
        """
        rgb = read_image(self.image_path).rgb
        labels = self.load_labels()
        if labels.shape != rgb.shape[:2]:
            raise TrainingError(
                f"{self.name}: the label map is {labels.shape[1]}x{labels.shape[0]} pixels "
                f"but the image is {rgb.shape[1]}x{rgb.shape[0]}"
            )
        if self.weight_map is not None and self.weight_map.shape != labels.shape:
            raise TrainingError(f"{self.name}: the weight map and the labels differ in size")
        return rgb, labels, self.weight_map


def check_labels(sample: Sample, labels: np.ndarray, num_classes: int) -> None:
    """Raise :class:`TrainingError` when ``labels`` hold values that are no class id.

    Values must be ``0..num_classes-1`` or 255; the message names the image and
    the offending values, and suggests ``--void`` for a dataset's void value.
    """
    if num_classes >= UNLABELED:
        return
    bad = (labels >= num_classes) & (labels != UNLABELED)
    if bad.any():
        values = sorted({int(v) for v in np.unique(labels[bad])})
        where = sample.label_path or sample.name
        raise TrainingError(
            f"{where}: labels hold value(s) {_listed([str(v) for v in values])}, which are "
            f"no class id of the {num_classes} classes (0..{num_classes - 1}) and not "
            f"{UNLABELED} (unlabeled); if one marks void, set it as the void value (--void)"
        )


@dataclass(frozen=True)
class TrainingData:
    """What a model trains and validates on.

    Attributes
    ----------
    train : tuple of Sample
        Images the model learns from.
    val : tuple of Sample
        Held-out images it is scored on; never trained on. May be empty.
    labelset : LabelSet
        The classes the label maps' ids refer to.
    source : str
        Where the data came from (a folder path), for provenance.
    unlabelled : tuple of Path
        Images of the same kind nobody labelled (a project's others), for the
        live learner's replay; may be empty.
    """

    train: tuple[Sample, ...]
    val: tuple[Sample, ...]
    labelset: LabelSet
    source: str
    unlabelled: tuple[Path, ...] = ()

    def __post_init__(self) -> None:
        if not self.train:
            raise TrainingError(f"{self.source}: no training images")
        seen = {s.name for s in self.train}
        both = [s.name for s in self.val if s.name in seen]
        if both:
            raise TrainingError(
                f"{self.source}: image(s) {_listed(both)} are both training and validation images"
            )

    def describe(self) -> str:
        """One line: the source, how many images train and validate, and the classes."""
        names = ", ".join(self.labelset.names[:8])
        more = f", ... ({self.labelset.num_classes})" if self.labelset.num_classes > 8 else ""
        return (
            f"{self.source}: {len(self.train)} training and {len(self.val)} validation "
            f"image(s); classes {names}{more}"
        )


def hash_split(names: Sequence[str], val_fraction: float, seed: int = 0) -> set[str]:
    """Choose validation images by a hash of their names.

    Each name falls into validation when its hash (with ``seed``) lies below
    ``val_fraction``, so the choice of one image does not depend on the others
    and stays put when images are added. With two or more names at least one
    validates and at least one trains.

    Returns
    -------
    set of str
        The validation names.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise TrainingError(
            f"the validation fraction must be in 0..1 (below 1), got {val_fraction}"
        )

    def unit(name: str) -> float:
        digest = hashlib.blake2b(f"{seed}\0{name}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2.0**64

    scores = {name: unit(name) for name in names}
    val = {name for name, u in scores.items() if u < val_fraction}
    if len(scores) >= 2 and val_fraction > 0:
        ranked = sorted(scores, key=lambda n: (scores[n], n))
        if not val:
            val.add(ranked[0])
        if len(val) == len(scores):
            val.discard(ranked[-1])
    return val


def _split(
    samples: list[Sample], val_fraction: float, seed: int, val_names: Sequence[str] | None
) -> tuple[tuple[Sample, ...], tuple[Sample, ...]]:
    if val_names:
        wanted = set(val_names)
        known = {s.name for s in samples}
        unknown = sorted(wanted - known)
        if unknown:
            log.warning("validation image(s) without labels are left out: %s", _listed(unknown))
        val = wanted & known
    else:
        val = hash_split([s.name for s in samples], val_fraction, seed)
    train = tuple(s for s in samples if s.name not in val)
    if not train:
        raise TrainingError(
            "every labelled image is a validation image; label more images, "
            "or choose fewer validation images"
        )
    return train, tuple(s for s in samples if s.name in val)


# --------------------------------------------------------------------------- projects


def from_project(
    project: Project,
    *,
    val_fraction: float = 0.15,
    val_names: Sequence[str] | None = None,
    seed: int = 0,
    corrected_weight: float = 2.0,
) -> TrainingData:
    """Take a snapshot of a project's labelled images.

    Every image with stored human labels takes part (in progress or reviewed);
    its labels are read now, so later edits do not reach this snapshot.
    Unlabeled pixels (255) are ignored by training, so sparse scribbles train.
    Where a person's label differs from the stored model prediction, the pixel
    was corrected, and its loss weight is ``corrected_weight`` (others 1.0).

    Parameters
    ----------
    project : Project
        An open project (any thread may call this; the project serialises reads).
    val_fraction : float
        Share of labelled images held out for validation (chosen by name hash).
    val_names : sequence of str, optional
        The validation images, instead of the hash choice (when non-empty).
    seed : int
        Changes the hash choice.
    corrected_weight : float
        Loss weight of corrected pixels (1.0 turns the weighting off).

    Raises
    ------
    TrainingError
        Nothing is labelled, or a label map holds values that are no class.
    ImageReadError
        A stored label map is damaged.
    """
    if not np.isfinite(corrected_weight) or corrected_weight <= 0:
        raise TrainingError(f"the corrected-pixel weight must be positive, got {corrected_weight}")
    labelset = project.labelset_or_default()
    n = labelset.num_classes
    samples: list[Sample] = []
    blank: list[str] = []
    unlabelled: list[Path] = []
    for record in project.images():
        if not record.has_labels:
            unlabelled.append(project.folder / record.name)
            continue
        labels = project.load_labels(record.name)
        if labels is None:  # cleared since the listing
            continue
        sample = Sample(record.name, project.folder / record.name, labels=labels)
        check_labels(sample, labels, n)
        if not (labels != UNLABELED).any():
            blank.append(record.name)
            continue
        weights = None
        if corrected_weight != 1.0 and record.has_prediction:
            weights = _corrected_weights(project, record.name, labels, corrected_weight)
        if weights is not None:
            sample = Sample(record.name, sample.image_path, labels=labels, weight_map=weights)
        samples.append(sample)
    if blank:
        log.info("left out %d image(s) whose labels are all unlabeled", len(blank))
    if not samples:
        raise TrainingError(
            f"{project.folder}: no labelled images to train on; paint or import labels first"
        )
    train, val = _split(samples, val_fraction, seed, val_names)
    return TrainingData(train, val, labelset, str(project.folder), tuple(unlabelled))


def _corrected_weights(
    project: Project, name: str, labels: np.ndarray, weight: float
) -> np.ndarray | None:
    """float16 weights: ``weight`` where the person's label differs from the prediction."""
    try:
        stored = project.load_prediction(name)
    except SegStudioError as exc:  # a damaged prediction only loses the weighting
        log.warning("%s: prediction not readable, no corrected-pixel weights (%s)", name, exc)
        return None
    if stored is None or stored[0].shape != labels.shape:
        return None
    corrected = (labels != UNLABELED) & (stored[0] != labels)
    if not corrected.any():
        return None
    return np.where(corrected, np.float16(weight), np.float16(1.0))


# --------------------------------------------------------------------------- folders


def _pair(images_dir: Path, labels_dir: Path, void: int | None) -> list[Sample]:
    """Samples for the images of ``images_dir`` and the same-stem label maps in ``labels_dir``."""
    match = match_stems(images_dir, labels_dir)
    if not match.images:
        raise TrainingError(f"{images_dir}: no images in this folder")
    for kind, files in (("images", match.images), ("label maps", match.labels)):
        clash = stem_clash(files)
        if clash is not None:
            first, second = clash
            raise TrainingError(
                f"{second.parent}: {kind} {first.name} and {second.name} have the same stem"
            )
    missing = [p.name for p in match.unlabeled]
    if missing:
        raise TrainingError(
            f"{len(missing)} image(s) in {images_dir} have no label map of the same name in "
            f"{labels_dir}: {_listed(missing)}"
        )
    orphans = [p.name for p in match.orphans]
    if orphans:
        raise TrainingError(
            f"{len(orphans)} label map(s) in {labels_dir} have no image in {images_dir}: "
            f"{_listed(orphans)}"
        )
    return [Sample(p.name, p, label_path=label, void=void) for p, label in match.pairs]


def from_folder(
    root: Path,
    *,
    void: int | None = None,
    labelset: LabelSet | None = None,
    val_fraction: float = 0.15,
    seed: int = 0,
) -> TrainingData:
    """A dataset folder of images and index label maps, matched by file stem.

    Two layouts are read:

    - CamVid / SegNet: ``train/`` + ``trainannot/`` and, optionally, ``val/`` +
      ``valannot/`` (without them, a hash-chosen share of ``train/`` validates);
    - ``images/`` + ``labels/``, split by its ``train.txt``/``val.txt`` when it has
      them (a SegStudio ``index`` export; ``test.txt`` images never train), else
      by name hash.

    The classes come from ``labelset`` or else the folder's ``classes.json``
    (SegStudio or CamVid format); the void value from ``void`` or else the
    ``void_index`` in ``classes.json``.

    Raises
    ------
    TrainingError
        Neither layout; no classes; images without label maps or label maps
        without images (the message lists a few names).
    """
    root = Path(root)
    if not root.is_dir():
        raise TrainingError(f"{root}: no such folder")

    found = {pair.split: pair for pair in folder_pairs(root)}
    camvid, flat = found.get("train"), found.get(None)
    if camvid is None and flat is None:
        raise TrainingError(
            f"{root}: not a dataset folder: expected train/ + trainannot/ (and val/ + valannot/), "
            "or images/ + labels/, or a SegStudio project (.segstudio/)"
        )
    classes_json = classes_file(root)
    if labelset is None:
        if classes_json is None:
            raise TrainingError(
                f"{root}: no classes.json; add one (SegStudio or CamVid format) naming the "
                "classes of the label maps, or give the classes"
            )
        try:
            labelset = LabelSet.load(classes_json)
        except LabelSetError as exc:
            raise TrainingError(str(exc)) from exc
    if void is None and classes_json is not None:
        try:  # leniently: the classes may come from elsewhere (--classes)
            void = read_void_index(classes_json)
        except LabelSetError as exc:
            raise TrainingError(str(exc)) from exc
    if void is not None and not 0 <= void <= UNLABELED:
        raise TrainingError(f"the void value must be 0..255, got {void}")
    if void is not None and void < labelset.num_classes:
        raise TrainingError(
            f"the void value {void} is the id of class {labelset.names[void]!r}; "
            "void must be no class id"
        )

    if camvid is not None:
        train = _pair(camvid.images, camvid.labels, void)
        val_folders = found.get("val")
        if val_folders is not None:
            val = _pair(val_folders.images, val_folders.labels, void)
            return TrainingData(tuple(train), tuple(val), labelset, str(root))
        samples = train
    else:
        assert flat is not None
        samples = _pair(flat.images, flat.labels, void)
        listed = split_lists(root)
        if listed is not None:  # an exported dataset's own split: never train on val/test
            train_names, val_names = listed
            by_stem = {Path(smp.name).stem: smp for smp in samples}
            train_l = tuple(by_stem[n] for n in train_names if n in by_stem)
            val_l = tuple(by_stem[n] for n in val_names if n in by_stem)
            if train_l:
                return TrainingData(train_l, val_l, labelset, str(root))
    train_t, val_t = _split(samples, val_fraction, seed, None)
    return TrainingData(train_t, val_t, labelset, str(root))


def load_source(
    source: Path,
    *,
    void: int | None = None,
    labelset: LabelSet | None = None,
    val_fraction: float = 0.15,
    val_names: Sequence[str] | None = None,
    seed: int = 0,
    corrected_weight: float = 2.0,
) -> TrainingData:
    """A project folder (it has ``.segstudio/``) or a dataset folder (see :func:`from_folder`).

    ``void`` and ``labelset`` apply to dataset folders (a project has its own
    label set); ``val_names`` and ``corrected_weight`` to projects.
    """
    from segstudio.io.project import STATE_DIR_NAME, Project

    source = Path(source)
    if (source / STATE_DIR_NAME).is_dir():
        if void is not None:
            log.warning("the void value applies to dataset folders, not to projects; ignored")
        # read-only: training may read a project a window has open for writing
        with Project.open(source, create=False, read_only=True) as project:
            data = from_project(
                project,
                val_fraction=val_fraction,
                val_names=val_names,
                seed=seed,
                corrected_weight=corrected_weight,
            )
        if labelset is not None and not labelset.same_classes(data.labelset):
            raise TrainingError(
                f"{source}: the project's classes {list(data.labelset.names)} differ from "
                f"the ones given {list(labelset.names)}"
            )
        return data
    return from_folder(source, void=void, labelset=labelset, val_fraction=val_fraction, seed=seed)


# --------------------------------------------------------------------------- class weights


def median_frequency_weights(data: TrainingData, num_classes: int) -> np.ndarray:
    """Class weights by median frequency balancing (Eigen and Fergus; SegNet).

    ``freq(c)`` is the number of pixels of class ``c`` divided by the labelled
    pixels of the training images in which ``c`` is present; the weight is
    ``median(freq) / freq(c)``, the median taken over the classes present.
    Unlabeled pixels count nowhere, so sparse labels are weighed by what was
    labelled. One pass over the training label maps.

    Returns
    -------
    numpy.ndarray
        ``float32`` of length ``num_classes``. Classes absent from the training
        labels get 1.0, a neutral value (they never occur as a target, so the
        loss does not use it; 0 would silently drop them from a reused
        weight vector); weights are clipped to
        :data:`MAX_CLASS_WEIGHT`. All ones when nothing is labelled.

    Raises
    ------
    TrainingError
        A label map holds values that are neither class ids nor 255.
    """
    counts = np.zeros(num_classes, np.float64)
    totals = np.zeros(num_classes, np.float64)
    for sample in data.train:
        labels = sample.load_labels()
        check_labels(sample, labels, num_classes)
        hist = np.bincount(labels.ravel(), minlength=256)[:num_classes].astype(np.float64)
        labelled = hist.sum()
        counts += hist
        totals += np.where(hist > 0, labelled, 0.0)
    present = counts > 0
    weights = np.ones(num_classes, np.float32)
    if not present.any():
        return weights
    freq = counts[present] / totals[present]
    weights[present] = np.minimum(np.median(freq) / freq, MAX_CLASS_WEIGHT)
    return weights
