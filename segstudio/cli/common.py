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
    """The image files given, and the images in the folders given."""
    for item in inputs:  # before anything is imported: a typo is answered at once
        if not Path(item).exists():
            raise UsageError(f"{item}: no such file or folder")
    images: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            from segstudio.io.images import IMAGE_SUFFIXES, list_images

            found = list_images(path)
            if not found:
                raise UsageError(f"{path}: no images in this folder ({', '.join(IMAGE_SUFFIXES)})")
            images += found
        elif path.is_file():
            images.append(path)
        else:
            raise UsageError(f"{path}: no such file or folder")
    return images


def model_path_arg(path: str | None) -> Path:
    """``--model``: the file given, or the bundled CamVid model when none is; checked to
    exist before torch is imported (a second), so a typo is answered at once."""
    from segstudio.core.bundled import bundled_model_path

    if path is None:
        bundled = bundled_model_path()
        if bundled is None:
            raise UsageError("no --model given, and this build has no bundled model")
        return bundled
    if not Path(path).exists():
        raise UsageError(f"--model {path}: model file not found")
    if Path(path).is_dir():
        raise UsageError(f"--model {path}: is a folder, not a model file")
    return Path(path)


def load_model_arg(path: str | None) -> LoadedModel:
    """The model of ``--model`` (see :func:`model_path_arg`), loaded."""
    model_path = model_path_arg(path)
    from segstudio.model.files import load_model

    return load_model(model_path)


#: Tiles of a big image the command line predicts at once on a CPU: two, each on
#: half the threads, keep both cores of a laptop busy through the network's
#: single-threaded stretches (a 12000 x 9000 JPEG on 2 AVX2 cores: 1.06x, the
#: median of six ``bench_bigimage.py`` runs; never slower there).
TILE_WORKERS = 2


def make_predictor(args: argparse.Namespace, model: LoadedModel) -> Any:
    import torch

    from segstudio.model.predictor import Predictor

    workers = args.tile_workers
    if workers is None:
        workers = min(TILE_WORKERS, torch.get_num_threads())
    elif workers < 1:
        raise UsageError(f"--tile-workers must be at least 1, got {workers}")
    return Predictor(
        model,
        device=args.device,
        precision=args.precision,
        tile=args.tile,
        tile_workers=workers,
    )


def progress_bar(total: int, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", file=sys.stderr, disable=None, leave=False)


def open_project(folder: str, *, create: bool = False, read_only: bool = False) -> Project:
    """The project of ``folder``; ``create`` makes a folder of images one (import);
    ``read_only`` (export) works while a window has the project open for writing."""
    path = check_folder_arg(folder, create=create)
    from segstudio.io.project import STATE_DIR_NAME, Project

    if create and not path.exists():
        path.mkdir()  # importing into a new project: its folder is made here
    if not create and not (path / STATE_DIR_NAME).is_dir():
        raise UsageError(f"{folder}: not a SegStudio project (no {STATE_DIR_NAME} folder)")
    return Project.open(path, create=create, read_only=read_only)


def check_folder_arg(folder: str, *, create: bool = False) -> Path:
    """A project folder argument that must exist (or, with ``create``, may be made in an
    existing folder), checked before the store and OpenCV are imported."""
    path = Path(folder)
    if create and not path.exists() and path.parent.is_dir():
        return path
    if not path.is_dir():
        raise UsageError(f"{folder}: no such folder")
    return path


def split_arg(value: str) -> tuple[float, float, float]:
    """``--split train,val,test``: three shares in 0..1 that sum to 1."""
    try:
        parts = tuple(float(v) for v in value.split(","))
    except ValueError as exc:
        raise UsageError(f"--split {value}: expected three numbers such as 0.8,0.1,0.1") from exc
    if len(parts) != 3:
        raise UsageError(f"--split {value}: expected three shares (train,val,test)")
    if any(not 0.0 <= p <= 1.0 for p in parts):
        raise UsageError(f"--split {value}: each share must be in 0..1")
    total = sum(parts)
    if abs(total - 1.0) > 1e-6:
        # 0.9 + 0.9 + 0.1 is 1.9000000000000001 in binary floating point: 6 digits say it
        raise UsageError(f"--split {value}: the shares must sum to 1, not {total:.6g}")
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
