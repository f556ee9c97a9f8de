"""``segstudio predict``: class masks for images, with the bundled model or another."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from segstudio.cli.common import (
    EXIT_USAGE,
    collect_images,
    load_model_arg,
    make_predictor,
    progress_bar,
)
from segstudio.core.errors import SegStudioError, UsageError


def cmd_predict(args: argparse.Namespace) -> int:
    from segstudio.core.convert import index_to_rgb
    from segstudio.io.images import read_image, write_label_map, write_rgb

    images = collect_images(args.inputs)
    by_stem: dict[str, Path] = {}
    for path in images:
        other = by_stem.setdefault(path.stem, path)
        if other != path:
            raise UsageError(f"{other} and {path} would both be written as {path.stem}.png")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a folder")
    model = load_model_arg(args.model)
    predictor = make_predictor(args, model)
    labelset = model.info.labelset
    out.mkdir(parents=True, exist_ok=True)
    failed: list[str] = []
    with progress_bar(len(images), "predict") as bar:
        for path in images:
            try:
                image = read_image(path)
            except SegStudioError as exc:
                print(f"segstudio predict: skipped {exc}", file=sys.stderr)
                failed.append(str(path))
                bar.update()
                continue
            pred = predictor.predict(image.rgb)
            write_label_map(out / f"{path.stem}.png", pred.labels, palette=None)
            write_rgb(out / f"{path.stem}_color.png", index_to_rgb(pred.labels, labelset))
            bar.update()
    done = len(images) - len(failed)
    print(f"predicted {done} image(s) into {out} with {predictor}")
    if failed:
        print(
            f"segstudio predict: error: {len(failed)} image(s) could not be read", file=sys.stderr
        )
        return EXIT_USAGE
    return 0
