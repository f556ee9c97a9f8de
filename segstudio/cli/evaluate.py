"""``segstudio eval``: score a model against ground-truth labels."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from segstudio.cli.common import load_model_arg, make_predictor, model_path_arg, progress_bar
from segstudio.core.errors import SegStudioError, UsageError
from segstudio.core.labelset import read_classes_file


def _pair_images_labels(images_dir: Path, labels_dir: Path) -> list[tuple[Path, Path]]:
    for d, flag in ((images_dir, "--images"), (labels_dir, "--labels")):
        if not d.is_dir():
            raise UsageError(f"{flag} {d}: not a folder")
    from segstudio.io.datasets.layouts import match_stems

    match = match_stems(images_dir, labels_dir)
    if not match.images:
        raise UsageError(f"--images {images_dir}: no images in this folder")
    missing = [p.name for p in match.unlabeled]
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise UsageError(f"{len(missing)} image(s) have no label file in {labels_dir}: {shown}")
    return match.pairs


def _eval_folders(args: argparse.Namespace) -> tuple[Path, Path, Path | None]:
    """The images and labels to score, and the dataset's classes.json if it has one.

    A dataset FOLDER may be images/ + labels/, a split beside its labels (CamVid's
    ``val`` and ``valannot``), or a CamVid/SegNet root (its val split is used).
    """
    if args.folder is None:
        if args.images is None or args.labels is None:
            raise UsageError("give a dataset FOLDER, or both --images and --labels")
        return Path(args.images), Path(args.labels), None  # all said: --void or nothing
    if args.images is not None or args.labels is not None:
        raise UsageError("give a dataset FOLDER or --images and --labels, not both")
    folder = Path(args.folder)
    if not folder.is_dir():
        raise UsageError(f"{folder}: not a folder")
    folder = folder.resolve()
    from segstudio.io.datasets.layouts import locate_labels

    found = locate_labels(folder)
    if found is None:
        raise UsageError(
            f"{folder}: cannot tell where its labels are (expected images/ + labels/, "
            "a split beside its <split>annot/ folder, or val/ + valannot/); "
            "give --images and --labels"
        )
    return found.images, found.labels, found.classes


def cmd_eval(args: argparse.Namespace) -> int:
    model_path_arg(args.model)  # checked before torch and OpenCV are imported
    if args.void is not None and not 0 <= args.void <= 255:
        raise UsageError(f"--void must be 0..255, got {args.void}")
    images_dir, labels_dir, classes = _eval_folders(args)
    pairs = _pair_images_labels(images_dir, labels_dir)
    from segstudio.training.data import Sample
    from segstudio.training.evaluate import evaluate

    model = load_model_arg(args.model)
    labelset = model.info.labelset
    void = args.void
    if classes is not None:
        try:
            theirs, their_void = read_classes_file(classes)
        except SegStudioError as exc:
            raise UsageError(str(exc)) from exc
        if void is None and their_void is not None:
            void = their_void  # CamVid's classes.json says which value is void
        if not theirs.same_names(labelset):
            print(
                f"warning: {classes} names other classes than the model "
                f"({', '.join(theirs.names[:4])}... against {', '.join(labelset.names[:4])}...)",
                file=sys.stderr,
            )
    if void is not None and not 0 <= void <= 255:
        raise UsageError(f"{classes}: void_index must be 0..255, got {void}")
    if void is not None and void < labelset.num_classes:
        raise UsageError(
            f"the void value {void} is the id of the model's class {labelset.names[void]!r}; "
            "void must be no class id"
        )
    predictor = make_predictor(args, model)
    samples = [Sample(image.name, image, label_path=label, void=void) for image, label in pairs]
    with progress_bar(len(pairs), "eval") as bar:
        result = evaluate(model, samples, predictor=predictor, on_image=lambda _n: bar.update())
    if args.json:
        result["images_dir"], result["labels_dir"] = str(images_dir), str(labels_dir)
        result["void"] = void
        result["path"] = predictor.path
        print(json.dumps(result))
        return 0
    print(f"images               {len(pairs)} in {images_dir}")
    print(f"computed in          {predictor.path} (--precision chooses)")
    print(f"labels               {labels_dir}" + ("" if void is None else f" (void {void})"))
    print(f"pixel accuracy       {result['pixel_accuracy']:.4f}")
    print(f"mean class accuracy  {result['mean_accuracy']:.4f}")
    print(f"mean IoU             {result['mean_iou']:.4f}")
    print(f"frequency-weighted   {result['fw_iou']:.4f}")
    print("per-class IoU:")
    for name, iou in zip(labelset.names, result["per_class_iou"], strict=True):
        print(f"  {name:<20} {'-' if iou is None else f'{iou:.4f}'}")
    return 0
