"""``segstudio predict``: class masks for images, with the bundled model or another."""

from __future__ import annotations

import argparse
import contextlib
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from segstudio.cli.common import (
    EXIT_USAGE,
    collect_images,
    load_model_arg,
    make_predictor,
    model_path_arg,
    progress_bar,
)
from segstudio.core.errors import ImageReadError, UsageError

if TYPE_CHECKING:
    import numpy as np


def _listed(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def output_names(path: Path) -> tuple[str, str]:
    """The two files ``predict`` writes for an image: class ids, and colours."""
    return f"{path.stem}.png", f"{path.stem}_color.png"


def check_outputs(images: list[Path], inputs: list[str], out: Path, overwrite: bool) -> None:
    """Refuse an ``--out`` where predicting would lose or mix up files.

    Always refused: two images writing the same file (``a.png`` and ``a.jpg``
    both make ``a.png``; ``a.png`` and ``a_color.png`` both make ``a_color.png``),
    and a prediction that would replace an input image. Without ``overwrite``
    also: ``--out`` being a folder of the input images, and files already in
    ``--out`` (an earlier prediction, or ground-truth labels) that would be
    replaced.
    """
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a folder")
    writers: dict[str, Path] = {}
    for path in images:
        for name in output_names(path):
            other = writers.setdefault(name, path)
            if other != path:
                raise UsageError(
                    f"{other} and {path} would both write {out / name}; predict them into "
                    "separate folders, or rename one"
                )
    real_out = out.resolve()
    real_images = {p.resolve(): p for p in images}
    for name, source in writers.items():
        image = real_images.get(real_out / name)
        if image is not None:
            raise UsageError(
                f"--out {out}: the prediction of {source} would replace the input image "
                f"{image}; choose another folder"
            )
    folders = {Path(i).resolve() for i in inputs if Path(i).is_dir()}
    folders |= {p.parent for p in real_images}
    if real_out in folders and not overwrite:
        raise UsageError(
            f"--out {out}: is a folder of the input images; choose another folder, or add "
            "--overwrite to write the predictions beside them"
        )
    existing = sorted(name for name in writers if (out / name).exists())
    if existing and not overwrite:
        raise UsageError(
            f"--out {out}: {len(existing)} file(s) there would be replaced ({_listed(existing)}); "
            "choose another folder, or add --overwrite to replace them"
        )


#: zlib level of the PNGs ``predict`` writes: twice as fast as the default, a
#: third larger (what dataset export writes too).
PNG_LEVEL = 1


def cmd_predict(args: argparse.Namespace) -> int:
    found = collect_images(args.inputs)
    images = list({p.resolve(): p for p in found}.values())  # an image given twice: once
    out = Path(args.out)
    check_outputs(images, list(args.inputs), out, args.overwrite)
    model_path_arg(args.model)  # checked before torch and OpenCV are imported
    from segstudio.core.convert import index_to_rgb
    from segstudio.io.images import open_bands, read_image, write_label_map, write_rgb

    model = load_model_arg(args.model)
    predictor = make_predictor(args, model)
    labelset = model.info.labelset
    out.mkdir(parents=True, exist_ok=True)
    failed: list[str] = []

    def write_ids(path: Path, labels: np.ndarray) -> None:
        write_label_map(out / output_names(path)[0], labels, compress_level=PNG_LEVEL)

    def write_colours(path: Path, labels: np.ndarray) -> None:
        colours = index_to_rgb(labels, labelset)
        write_rgb(out / output_names(path)[1], colours, compress_level=PNG_LEVEL)

    # An image's two PNGs are written, side by side, while the next image is
    # predicted (zlib releases the GIL); one image's writes at most are pending.
    # A write error stops the run at the next image; one that an error or Ctrl+C
    # in the prediction meanwhile would hide is reported too.
    with progress_bar(len(images), "predict") as bar, ThreadPoolExecutor(2) as writer:
        pending: list[Future[None]] = []
        try:
            for path in images:
                try:
                    # a large tiled or striped TIFF is read a band at a time as it is predicted
                    bands = open_bands(path)
                    if bands is not None and predictor.tile_count(*bands.shape[:2]) == 1:
                        bands.close()
                        bands = None
                    with contextlib.nullcontext() if bands is None else bands:
                        rgb = read_image(path).rgb if bands is None else bands
                        pred = predictor.predict(rgb, confidence=False)  # not written
                except ImageReadError as exc:
                    print(f"segstudio predict: skipped {exc}", file=sys.stderr)
                    failed.append(str(path))
                    bar.update()
                    continue
                for job in pending:
                    job.result()
                pending = [writer.submit(w, path, pred.labels) for w in (write_ids, write_colours)]
                bar.update()
            for job in pending:
                job.result()
        except BaseException as exc:
            lost = [e for j in pending if not j.cancelled() and (e := j.exception()) is not None]
            if lost and exc not in lost:  # else the error on its way out is a write's
                print(
                    f"segstudio predict: error: writing a prediction failed: {lost[0]}",
                    file=sys.stderr,
                )
            raise
    done = len(images) - len(failed)
    print(f"predicted {done} image(s) into {out} with {predictor}")
    if failed:
        print(
            f"segstudio predict: error: {len(failed)} image(s) could not be read", file=sys.stderr
        )
        return EXIT_USAGE
    return 0
