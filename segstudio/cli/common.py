"""What the commands share: argument checks, loading a model, progress bars.

Every check raises :class:`~segstudio.core.errors.UsageError`, which
:func:`segstudio.cli.main` prints as one line with exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from segstudio.core.errors import UsageError
from segstudio.core.labelset import PRESETS, LabelSet, preset

if TYPE_CHECKING:
    from segstudio.io.project import Project
    from segstudio.model.files import LoadedModel

EXIT_USAGE = 2


def labelset_arg(value: str) -> LabelSet:
    """A classes JSON file, or the name of a preset."""
    if value.lower() in PRESETS:
        return preset(value)
    path = Path(value)
    if not path.exists():
        known = ", ".join(sorted(PRESETS))
        raise UsageError(f"--classes {value}: no such file, and not a preset ({known})")
    return LabelSet.load(path)


def collect_images(inputs: Sequence[str]) -> list[Path]:
    from segstudio.io.images import IMAGE_SUFFIXES, list_images

    images: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = list_images(path)
            if not found:
                raise UsageError(f"{path}: no images in this folder ({', '.join(IMAGE_SUFFIXES)})")
            images += found
        elif path.is_file():
            images.append(path)
        else:
            raise UsageError(f"{path}: no such file or folder")
    return images


def load_model_arg(path: str | None) -> LoadedModel:
    """The model file given, or the bundled CamVid model when none is."""
    from segstudio.core.bundled import bundled_model_path
    from segstudio.model.files import load_model

    if path is None:
        bundled = bundled_model_path()
        if bundled is None:
            raise UsageError("no --model given, and this build has no bundled model")
        path = str(bundled)
    return load_model(path)


def make_predictor(args: argparse.Namespace, model: LoadedModel) -> Any:
    from segstudio.model.predictor import Predictor

    return Predictor(model, device=args.device, precision=args.precision, tile=args.tile)


def progress_bar(total: int, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", file=sys.stderr, disable=None, leave=False)


def open_project(folder: str, *, create: bool = False) -> Project:
    """The project of ``folder``; ``create`` makes a folder of images one (import)."""
    from segstudio.io.project import STATE_DIR_NAME, Project

    path = Path(folder)
    if create and not path.exists() and path.parent.is_dir():
        path.mkdir()  # importing into a new project: its folder is made here
    if not path.is_dir():
        raise UsageError(f"{folder}: no such folder")
    if not create and not (path / STATE_DIR_NAME).is_dir():
        raise UsageError(f"{folder}: not a SegStudio project (no .segstudio folder)")
    return Project.open(path, create=create)


def split_arg(value: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(v) for v in value.split(","))
    except ValueError as exc:
        raise UsageError(f"--split {value}: expected three numbers such as 0.8,0.1,0.1") from exc
    if len(parts) != 3:
        raise UsageError(f"--split {value}: expected three shares (train,val,test)")
    return parts  # type: ignore[return-value]


class Bar:
    """Shows a job's reports on a tqdm bar made on the first report, closed at the end.

    ``show(report, bar)`` shows one report and returns the bar (None before the
    first report). Use as ``with Bar(show) as bar: drive(gen, bar)``.
    """

    def __init__(self, show: Callable[[Any, Any], Any]) -> None:
        self._show = show
        self.bar: Any = None

    def __call__(self, report: Any) -> None:
        self.bar = self._show(report, self.bar)

    def __enter__(self) -> Bar:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.bar is not None:
            self.bar.close()


def count_bar(desc: str) -> Bar:
    """A :class:`Bar` for reports of ``done`` of ``total`` items (export, import)."""

    def show(p: Any, bar: Any) -> Any:
        bar = bar if bar is not None else progress_bar(p.total, desc)
        bar.update(p.done - bar.n)
        return bar

    return Bar(show)
