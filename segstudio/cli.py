"""The ``segstudio`` command: the window by default, and the headless engine.

Every sub-command validates its arguments before it writes anything; a bad
argument or file prints one line on stderr and exits with code 2. Outputs are
written atomically, so ``--out`` never holds a half-written file.

torch is imported only inside the commands that need it, so ``segstudio``
(the window) and ``--help`` start fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from segstudio import __version__
from segstudio.core.errors import SegStudioError, UsageError
from segstudio.core.labelset import PRESETS, LabelSet, preset, read_classes_file

if TYPE_CHECKING:
    from segstudio.model.files import LoadedModel

log = logging.getLogger("segstudio")

EXIT_USAGE = 2


# Copies of segstudio.io.datasets.FORMATS / IMPORT_FORMATS, so building the parser does not
# import OpenCV (tests/unit/test_datasets.py checks they agree).
EXPORT_FORMATS = ("index", "camvid", "voc", "cityscapes", "coco")
IMPORT_FORMATS = ("index", "rgb", "voc", "camvid", "cvat", "cityscapes", "coco")


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _labelset_arg(value: str) -> LabelSet:
    """A classes JSON file, or the name of a preset."""
    if value.lower() in PRESETS:
        return preset(value)
    path = Path(value)
    if not path.exists():
        known = ", ".join(sorted(PRESETS))
        raise UsageError(f"--classes {value}: no such file, and not a preset ({known})")
    return LabelSet.load(path)


def _collect_images(inputs: Sequence[str]) -> list[Path]:
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


def _load_model(path: str | None) -> LoadedModel:
    """The model file given, or the bundled CamVid model when none is."""
    from segstudio.core.bundled import bundled_model_path
    from segstudio.model.files import load_model

    if path is None:
        bundled = bundled_model_path()
        if bundled is None:
            raise UsageError("no --model given, and this build has no bundled model")
        path = str(bundled)
    return load_model(path)


def _make_predictor(args: argparse.Namespace, model: LoadedModel) -> Any:
    from segstudio.model.predictor import Predictor

    return Predictor(model, device=args.device, precision=args.precision, tile=args.tile)


def _progress(total: int, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", file=sys.stderr, disable=None, leave=False)


# -- model -----------------------------------------------------------------------------------


#: The registry's names (segstudio.model.arch.ARCHITECTURES), spelled out so that
#: building the parser imports no torch; a unit test keeps the two in step.
_ARCH_NAMES = "segnet, segnet_basic, unet, fcn8s, deconvnet, deeplab, pspnet"


def cmd_model_new(args: argparse.Namespace) -> int:
    from segstudio.model.arch import ArchSpec
    from segstudio.model.files import new_model, save_model

    labelset = _labelset_arg(args.classes)
    params: dict[str, Any] = {}
    if args.width is not None:
        params["width"] = args.width
    out = Path(args.out)
    model = new_model(ArchSpec(args.arch, params), labelset, seed=args.seed)
    save_model(out, model)
    print(
        f"wrote untrained {args.arch} model for {labelset.num_classes} classes "
        f"({labelset.name}) to {out}"
    )
    return 0


def cmd_model_info(args: argparse.Namespace) -> int:
    from segstudio.model.files import read_model_info

    info = read_model_info(args.file)
    print(json.dumps(info.to_dict(), indent=2))
    return 0


def cmd_model_convert(args: argparse.Namespace) -> int:
    from segstudio.model.files import load_model, save_model

    src, out = Path(args.file), Path(args.out)
    if out.resolve() == src.resolve():
        raise UsageError("--out must be another file than the input")
    model = load_model(src)
    save_model(out, model, half=args.half)
    kind = "float16" if args.half else "float32"
    print(f"wrote {out} ({kind} weights, {out.stat().st_size / 2**20:.1f} MiB)")
    return 0


# -- predict ---------------------------------------------------------------------------------


def cmd_predict(args: argparse.Namespace) -> int:
    from segstudio.core.convert import index_to_rgb
    from segstudio.io.images import read_image, write_label_map, write_rgb

    images = _collect_images(args.inputs)
    by_stem: dict[str, Path] = {}
    for path in images:
        other = by_stem.setdefault(path.stem, path)
        if other != path:
            raise UsageError(f"{other} and {path} would both be written as {path.stem}.png")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a folder")
    model = _load_model(args.model)
    predictor = _make_predictor(args, model)
    labelset = model.info.labelset
    out.mkdir(parents=True, exist_ok=True)
    failed: list[str] = []
    with _progress(len(images), "predict") as bar:
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


# -- eval ------------------------------------------------------------------------------------


def _pair_images_labels(images_dir: Path, labels_dir: Path) -> list[tuple[Path, Path]]:
    from segstudio.io.images import list_images

    for d, flag in ((images_dir, "--images"), (labels_dir, "--labels")):
        if not d.is_dir():
            raise UsageError(f"{flag} {d}: not a folder")
    images = list_images(images_dir)
    labels = {p.stem: p for p in list_images(labels_dir)}
    if not images:
        raise UsageError(f"--images {images_dir}: no images in this folder")
    missing = [p.name for p in images if p.stem not in labels]
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise UsageError(f"{len(missing)} image(s) have no label file in {labels_dir}: {shown}")
    return [(p, labels[p.stem]) for p in images]


def _eval_folders(args: argparse.Namespace) -> tuple[Path, Path, Path | None]:
    """The images and labels to score, and the dataset's classes.json if it has one.

    A dataset FOLDER may be images/ + labels/, a split beside its labels (CamVid's
    ``val`` and ``valannot``), or a CamVid/SegNet root (its val split is used).
    """
    if args.folder is None:
        if args.images is None or args.labels is None:
            raise UsageError("give a dataset FOLDER, or both --images and --labels")
        return Path(args.images), Path(args.labels), None  # all said: --void or nothing
    else:
        if args.images is not None or args.labels is not None:
            raise UsageError("give a dataset FOLDER or --images and --labels, not both")
        folder = Path(args.folder)
        if not folder.is_dir():
            raise UsageError(f"{folder}: not a folder")
        folder = folder.resolve()
        if (folder / "images").is_dir() and (folder / "labels").is_dir():
            images, labels, root = folder / "images", folder / "labels", folder
        elif (folder.parent / f"{folder.name}annot").is_dir():
            images, labels, root = folder, folder.parent / f"{folder.name}annot", folder.parent
        elif (folder / "val").is_dir() and (folder / "valannot").is_dir():
            images, labels, root = folder / "val", folder / "valannot", folder
        else:
            raise UsageError(
                f"{folder}: cannot tell where its labels are (expected images/ + labels/, "
                "a split beside its <split>annot/ folder, or val/ + valannot/); "
                "give --images and --labels"
            )
    classes = root / "classes.json"
    return images, labels, classes if classes.is_file() else None


def cmd_eval(args: argparse.Namespace) -> int:
    from segstudio.core.convert import check_index_map
    from segstudio.core.metrics import ConfusionMatrix
    from segstudio.io.images import read_image, read_label_map

    images_dir, labels_dir, classes = _eval_folders(args)
    pairs = _pair_images_labels(images_dir, labels_dir)
    if args.void is not None and not 0 <= args.void <= 255:
        raise UsageError(f"--void must be 0..255, got {args.void}")
    model = _load_model(args.model)
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
    predictor = _make_predictor(args, model)
    cm = ConfusionMatrix(labelset.num_classes, ignore_index=void)
    with _progress(len(pairs), "eval") as bar:
        for image_path, label_path in pairs:
            image = read_image(image_path)
            target = read_label_map(label_path)
            if target.shape != image.rgb.shape[:2]:
                raise UsageError(
                    f"{label_path}: label is {target.shape[1]}x{target.shape[0]}, "
                    f"image is {image.width}x{image.height}"
                )
            try:
                check_index_map(target, labelset.num_classes, void=void)
            except SegStudioError as exc:
                raise UsageError(f"{label_path}: {exc} (set --void for a void index)") from exc
            cm.update(predictor.predict(image.rgb).labels, target)
            bar.update()
    metrics = cm.compute()
    if args.json:
        result = metrics.to_dict()
        result["class_names"] = list(labelset.names)
        result["images"] = len(pairs)
        result["images_dir"], result["labels_dir"] = str(images_dir), str(labels_dir)
        result["void"] = void
        print(json.dumps(result))
    else:
        print(f"images               {len(pairs)} in {images_dir}")
        print(f"labels               {labels_dir}" + ("" if void is None else f" (void {void})"))
        print(f"pixel accuracy       {metrics.pixel_accuracy:.4f}")
        print(f"mean class accuracy  {metrics.mean_accuracy:.4f}")
        print(f"mean IoU             {metrics.mean_iou:.4f}")
        print(f"frequency-weighted   {metrics.fw_iou:.4f}")
        print("per-class IoU:")
        for name, iou in zip(labelset.names, metrics.per_class_iou, strict=True):
            print(f"  {name:<20} {'-' if iou is None else f'{iou:.4f}'}")
    return 0


# -- train -----------------------------------------------------------------------------------


def _train_args(args: argparse.Namespace) -> tuple[Path, Path, Any]:
    """Check the arguments of ``train`` before anything is loaded or written."""
    from segstudio.training.loop import TrainConfig

    source = Path(args.source)
    if not source.is_dir():
        raise UsageError(f"{source}: no such folder (a project or a dataset folder)")
    out = Path(args.out)
    if out.suffix != ".safetensors":
        raise UsageError(f"--out {out}: model files must end in .safetensors")
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: folder {out.parent} does not exist")
    if out.is_dir():
        raise UsageError(f"--out {out}: is a folder")
    if args.width is not None and args.init is not None:
        raise UsageError("--width applies to a new model (--arch), not to --init")
    if args.void is not None and not 0 <= args.void <= 255:
        raise UsageError(f"--void must be 0..255, got {args.void}")
    if not 0.0 <= args.val_fraction < 1.0:
        raise UsageError(f"--val-fraction must be in 0..1 (below 1), got {args.val_fraction}")
    ckpt = Path(args.checkpoint_dir) if args.checkpoint_dir else out.with_name(out.name + ".ckpt")
    from segstudio.training.recipes import FEW_SHOT

    few = args.recipe == "few-shot" or (args.recipe == "auto" and args.init is not None)
    recipe: dict[str, Any] = dict(FEW_SHOT) if few else {}
    if args.lr is not None:
        recipe["lr"] = args.lr
    config = TrainConfig(
        epochs=args.epochs,
        minutes=args.minutes,
        batch_size=args.batch_size,
        crop=args.crop,
        freeze_encoder=args.freeze_encoder,
        precision=args.precision,
        device=args.device,
        seed=args.seed,
        **recipe,
    )
    return out, ckpt, config


def _training_bar(p: Any, bar: Any) -> Any:
    """Show one fine-tune progress report on a tqdm bar (made on the first report)."""
    from tqdm import tqdm

    if bar is None:
        bar = tqdm(total=p.total_steps, desc="train", unit="step", file=sys.stderr,
                   disable=None, leave=False, dynamic_ncols=True)  # fmt: skip
    if p.kind == "step":
        bar.update(p.step - bar.n)
        post = {"epoch": p.epoch}
        if p.loss is not None:
            post["loss"] = f"{p.loss:.4f}"
        bar.set_postfix(post, refresh=False)
    elif p.kind == "validation" and p.metrics is not None:
        bar.write(f"{p.message}", file=sys.stderr)
        bar.set_description(f"train (val mIoU {p.metrics['mean_iou']:.3f})", refresh=False)
    elif p.kind == "message":
        bar.write(p.message, file=sys.stderr)
    return bar


def _summary(result: Any) -> list[str]:
    """The closing lines: before/after mean IoU and, said plainly, whether it improved."""
    before, after = result.before, result.after
    lines = []
    if before is not None:
        lines.append(
            f"before: mean IoU {before['mean_iou']:.4f} on {before['images']} val image(s)"
        )
    if after is not None:
        lines.append(f"after:  mean IoU {after['mean_iou']:.4f} on {after['images']} val image(s)")
    if result.improved is True:
        delta = after["mean_iou"] - before["mean_iou"]
        lines.append(f"improved: yes, mean IoU +{delta:.4f}")
    elif result.improved is False:
        delta = before["mean_iou"] - after["mean_iou"]
        lines.append(
            f"improved: no, mean IoU fell by {delta:.4f}; keep using the starting model"
            if delta > 0
            else "improved: no, mean IoU is unchanged"
        )
    elif after is None:
        lines.append("improved: unknown, there are no validation images to score it on")
    elif before is not None:
        lines.append(f"improved: no verdict, {result.verdict}")
    else:
        lines.append("improved: not comparable, the model started from scratch or a new head")
    return lines


def _quick_bar(p: Any, bar: Any) -> Any:
    """Show a quick-train report: images read, the fit, validation images."""
    if bar is None or getattr(bar, "segstudio_kind", None) != p.kind:
        if bar is not None:
            bar.close()
        bar = _progress(p.total, p.kind)
        bar.segstudio_kind = p.kind
    bar.update(p.done - bar.n)
    if p.kind == "fit":
        bar.write(p.message, file=sys.stderr)
    return bar


def cmd_train_quick(args: argparse.Namespace) -> int:
    """``train --quick``: fit only the live learner's head on a frozen SegNet."""
    from segstudio.core.bundled import bundled_model_path
    from segstudio.model.files import load_model, save_model
    from segstudio.training.data import load_source
    from segstudio.training.live import quick_train

    source = Path(args.source)
    if not source.is_dir():
        raise UsageError(f"{source}: no such folder (a project or a dataset folder)")
    out = Path(args.out)
    if out.suffix != ".safetensors" or not out.parent.is_dir() or out.is_dir():
        raise UsageError(f"--out {out}: must be a .safetensors file in an existing folder")
    for flag in ("arch", "width", "epochs", "minutes", "resume", "checkpoint_dir", "lr"):
        if getattr(args, flag):
            raise UsageError(f"--{flag.replace('_', '-')} does not apply to --quick")
    init_path = args.init or bundled_model_path()
    if init_path is None:
        raise UsageError("--quick reads a SegNet's features: give --init MODEL")
    base = load_model(init_path)
    labelset = _labelset_arg(args.classes) if args.classes else None
    data = load_source(
        source, void=args.void, labelset=labelset, val_fraction=args.val_fraction, seed=args.seed
    )
    device = "cpu" if args.device == "auto" else args.device
    model, metrics = _drive(quick_train(data, base, device=device), _quick_bar)
    save_model(out, model)
    print(f"quick-trained the live learner on {data.describe()}")
    if metrics is not None:
        print(f"val:    mean IoU {metrics['mean_iou']:.4f} on {metrics['images']} image(s)")
    print(f"wrote {out}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    if args.quick:
        return cmd_train_quick(args)
    from segstudio.model.arch import ArchSpec
    from segstudio.model.files import load_model, save_model
    from segstudio.training.data import load_source
    from segstudio.training.ddp import distributed
    from segstudio.training.loop import CHECKPOINT_NAME, fine_tune

    out, ckpt, config = _train_args(args)
    labelset = _labelset_arg(args.classes) if args.classes else None
    init = load_model(args.init) if args.init else None
    if init is not None and init.info.arch.name == "live":
        from segstudio.model.live import base_model

        init = base_model(init)  # deep training trains the live model's SegNet
    arch = None
    if init is None:
        params: dict[str, Any] = {} if args.width is None else {"width": args.width}
        arch = ArchSpec(args.arch or "segnet", params)
    source = Path(args.source)
    if (
        labelset is None
        and init is not None
        and not (source / ".segstudio").is_dir()
        and not (source / "classes.json").is_file()
    ):
        labelset = init.info.labelset  # a dataset without classes.json: the model's classes
    with distributed(config.device) as env:
        data = load_source(
            source,
            void=args.void,
            labelset=labelset,
            val_fraction=args.val_fraction,
            seed=config.seed,
            corrected_weight=config.corrected_weight,
        )
        resume = args.resume
        exists = (ckpt / CHECKPOINT_NAME).is_file()
        if resume and not exists:
            # the same command starts a run and resumes it in later sessions
            if env.is_main:
                print(f"no checkpoint in {ckpt} yet: starting a new run", file=sys.stderr)
            resume = False
        elif exists and not resume:
            raise UsageError(
                f"{ckpt} holds the checkpoint of an earlier run: add --resume to continue it, "
                "or choose another --checkpoint-dir"
            )
        gen = fine_tune(
            data, init=init, arch=arch, config=config, checkpoint_dir=ckpt, resume=resume
        )
        result = _drive(gen, _training_bar if env.is_main else lambda p, bar: bar)
        if not env.is_main:
            return 0
        save_model(out, result.model)
    prov = result.model.info.provenance
    print(f"trained {prov['steps']} step(s) in {prov['duration_s']:.1f} s on {data.describe()}")
    for line in _summary(result):
        print(line)
    print(f"wrote {out} (checkpoint in {ckpt})")
    if result.stopped_early:
        print(
            f"segstudio train: stopped early: {result.stopped_early}; {out} holds the last "
            "good weights",
            file=sys.stderr,
        )
        return 1
    return 0


# -- export / import -------------------------------------------------------------------------


def _open_project(folder: str, *, create: bool = False) -> Any:
    """The project of ``folder``; ``create`` makes a folder of images one (import)."""
    from segstudio.io.project import Project

    path = Path(folder)
    if create and not path.exists() and path.parent.is_dir():
        path.mkdir()  # importing into a new project: its folder is made here
    if not path.is_dir():
        raise UsageError(f"{folder}: no such folder")
    if not create and not (path / ".segstudio").is_dir():
        raise UsageError(f"{folder}: not a SegStudio project (no .segstudio folder)")
    return Project.open(path, create=create)


def _split_arg(value: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(v) for v in value.split(","))
    except ValueError as exc:
        raise UsageError(f"--split {value}: expected three numbers such as 0.8,0.1,0.1") from exc
    if len(parts) != 3:
        raise UsageError(f"--split {value}: expected three shares (train,val,test)")
    return parts  # type: ignore[return-value]


def _drive(gen: Any, show: Callable[[Any, Any], Any]) -> Any:
    """Run a progress generator to its end and return its value.

    ``show(report, bar)`` shows each report and returns the bar (None before the
    first report); the bar is closed and the generator too, also on an error.
    """
    bar = None
    try:
        while True:
            bar = show(next(gen), bar)
    except StopIteration as stop:
        return stop.value
    finally:
        gen.close()
        if bar is not None:
            bar.close()


def _count_bar(desc: str) -> Callable[[Any, Any], Any]:
    """A ``show`` for :func:`_drive`: export/import reports (done of total)."""

    def show(p: Any, bar: Any) -> Any:
        bar = bar if bar is not None else _progress(p.total, desc)
        bar.update(p.done - bar.n)
        return bar

    return show


def cmd_export(args: argparse.Namespace) -> int:
    from segstudio.io.datasets import ExportOptions, export_dataset

    if args.camvid_void is not None and not 0 <= args.camvid_void <= 255:
        raise UsageError(f"--camvid-void must be 0..255, got {args.camvid_void}")
    options = ExportOptions(
        format=args.format,
        split=_split_arg(args.split),
        seed=args.seed,
        include_predicted=args.include_predicted,
        camvid_void=args.camvid_void,
        camvid_color=args.camvid_color,
        instances=args.instances,
        overwrite=args.overwrite,
    )
    with _open_project(args.project) as project:
        report = _drive(export_dataset(project, Path(args.out), options), _count_bar("export"))
    splits = ", ".join(f"{k} {v}" for k, v in report.splits.items())
    print(
        f"exported {report.images} image(s) as {report.format} to {report.out} ({splits}); "
        f"{len(report.skipped)} skipped"
    )
    for line in report.skipped:
        print(f"segstudio export: skipped {line}", file=sys.stderr)
    for line in report.warnings:
        print(f"segstudio export: warning: {line}", file=sys.stderr)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from segstudio.io.datasets import import_dataset

    if args.void is not None and not 0 <= args.void <= 255:
        raise UsageError(f"--void must be 0..255, got {args.void}")
    source = Path(args.source)
    if not source.is_dir():
        raise UsageError(f"{source}: no such dataset folder")
    palette = Path(args.palette) if args.palette else None
    with _open_project(args.project, create=True) as project:
        gen = import_dataset(
            project, source, args.format, palette=palette, void=args.void, replace=args.replace
        )
        report = _drive(gen, _count_bar("import"))
    print(
        f"imported {report.labels} label map(s) ({report.images} new image(s), "
        f"{report.classes.num_classes} classes of {report.classes.name!r}) from {source}"
    )
    for line in report.warnings:
        print(f"segstudio import: warning: {line}", file=sys.stderr)
    return 0


# -- the parser ------------------------------------------------------------------------------


def _add_runtime_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps"
    )
    p.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "fp32", "bf16", "fp16"],
        help="compute precision (auto: bf16 where the hardware has it)",
    )
    p.add_argument(
        "--tile", type=int, default=1024, help="predict larger images in tiles of N x N pixels"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="segstudio",
        usage="segstudio [FOLDER] | segstudio COMMAND ...",
        description="Label images pixel by pixel with a SegNet model in the loop. "
        "`segstudio [FOLDER]` opens the window (and the folder as a project).",
    )
    parser.add_argument("--version", action="version", version=f"segstudio {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    p_model = sub.add_parser("model", help="create or inspect model files")
    msub = p_model.add_subparsers(dest="model_command", parser_class=_Parser, required=True)
    p_new = msub.add_parser("new", help="write an untrained model file")
    p_new.add_argument("--arch", default="segnet", help=f"{_ARCH_NAMES} (default segnet)")
    p_new.add_argument("--width", type=float, help="channel width multiplier (lighter < 1.0)")
    p_new.add_argument(
        "--classes",
        required=True,
        help=f"classes JSON file, or a preset: {', '.join(sorted(PRESETS))}",
    )
    p_new.add_argument("--seed", type=int, default=0)
    p_new.add_argument("--out", required=True, help="model file to write (.safetensors)")
    p_new.set_defaults(func=cmd_model_new)
    p_info = msub.add_parser("info", help="print a model file's metadata as JSON")
    p_info.add_argument("file")
    p_info.set_defaults(func=cmd_model_info)
    p_conv = msub.add_parser("convert", help="rewrite a model file (e.g. with float16 weights)")
    p_conv.add_argument("file")
    p_conv.add_argument("--out", required=True, help="model file to write (.safetensors)")
    p_conv.add_argument("--half", action="store_true", help="store weights as float16")
    p_conv.set_defaults(func=cmd_model_convert)

    p_pred = sub.add_parser("predict", help="predict class masks for images")
    p_pred.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR")
    p_pred.add_argument("--model", help="model file (.safetensors); default: the bundled model")
    p_pred.add_argument("--out", required=True, help="folder for <stem>.png and <stem>_color.png")
    _add_runtime_args(p_pred)
    p_pred.set_defaults(func=cmd_predict)

    p_eval = sub.add_parser("eval", help="score a model against ground-truth labels")
    p_eval.add_argument("--model", help="model file (.safetensors); default: the bundled model")
    p_eval.add_argument(
        "folder",
        nargs="?",
        metavar="FOLDER",
        help="dataset folder: images/ + labels/, a split such as camvid/val (labels in "
        "valannot/), or a CamVid root (its val split)",
    )
    p_eval.add_argument("--images", help="folder of images (instead of FOLDER)")
    p_eval.add_argument("--labels", help="folder of index label PNGs, same stems (with --images)")
    p_eval.add_argument(
        "--void",
        type=int,
        help="label value to ignore (default: classes.json's void_index, e.g. 11 for CamVid)",
    )
    p_eval.add_argument("--json", action="store_true", help="print one JSON object")
    _add_runtime_args(p_eval)
    p_eval.set_defaults(func=cmd_eval)

    p_train = sub.add_parser(
        "train",
        help="fine-tune or train a model on a project or a dataset folder",
        description="Train on SOURCE: a SegStudio project (its labelled images), a CamVid/SegNet "
        "folder (train/ trainannot/ val/ valannot/ classes.json) or images/ + labels/ "
        "(+ classes.json). Under torchrun it trains data-parallel.",
    )
    p_train.add_argument("source", metavar="SOURCE", help="project or dataset folder")
    start = p_train.add_mutually_exclusive_group()
    start.add_argument("--init", metavar="MODEL", help="model file to start from (fine-tune)")
    start.add_argument(
        "--arch", help=f"a new model of this architecture: {_ARCH_NAMES} (default segnet)"
    )
    p_train.add_argument("--width", type=float, help="channel width multiplier of a new model")
    length = p_train.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=int, help="passes over the training images (default 20)")
    length.add_argument("--minutes", type=float, help="train for this long instead")
    p_train.add_argument("--batch-size", type=int, default=4, help="images per step (default 4)")
    p_train.add_argument("--crop", type=int, default=320, help="training crop side (default 320)")
    p_train.add_argument(
        "--lr", type=float, help="peak learning rate (default 1e-3; 5e-4 in the few-shot recipe)"
    )
    p_train.add_argument(
        "--recipe",
        choices=["auto", "few-shot", "full"],
        default="auto",
        help="few-shot: for a trained model on a few images (encoder at 1/10 of the learning "
        "rate, batch-norm statistics kept, the best weights on validation kept, early stop); "
        "full: the from-scratch recipe; auto (default): few-shot with --init, else full",
    )
    p_train.add_argument("--freeze-encoder", action="store_true", help="train the decoder only")
    p_train.add_argument("--void", type=int, help="label value to ignore (default: classes.json)")
    p_train.add_argument(
        "--classes", help="classes JSON or preset, for a dataset folder without classes.json"
    )
    p_train.add_argument(
        "--val-fraction", type=float, default=0.15, help="share of images held out (default 0.15)"
    )
    p_train.add_argument("--seed", type=int, default=0)
    p_train.add_argument(
        "--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps"
    )
    p_train.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "fp32", "bf16"],
        help="compute precision (auto: bf16 autocast where the hardware has it)",
    )
    p_train.add_argument(
        "--resume",
        action="store_true",
        help="continue from the checkpoint in --checkpoint-dir (a new run when there is none)",
    )
    p_train.add_argument("--checkpoint-dir", help="checkpoint folder (default: OUT.ckpt/)")
    p_train.add_argument(
        "--quick",
        action="store_true",
        help="train only the live learner (seconds): a small head over the frozen features of "
        "--init (a SegNet; default the bundled model)",
    )
    p_train.add_argument("--out", required=True, help="model file to write (.safetensors)")
    p_train.set_defaults(func=cmd_train)

    p_exp = sub.add_parser("export", help="export a project's labelled images as a dataset")
    p_exp.add_argument("project", metavar="PROJECT", help="project folder")
    p_exp.add_argument("--format", required=True, choices=EXPORT_FORMATS)
    p_exp.add_argument("--out", required=True, help="dataset folder to create")
    p_exp.add_argument("--split", default="0.8,0.1,0.1", help="train,val,test shares")
    p_exp.add_argument("--seed", type=int, default=0, help="seed of the split (default 0)")
    p_exp.add_argument(
        "--include-predicted",
        action="store_true",
        help="also in-progress images and predicted ones (their prediction as the mask)",
    )
    p_exp.add_argument("--camvid-void", type=int, help="camvid: write unlabeled as this value")
    p_exp.add_argument(
        "--camvid-color", action="store_true", help="camvid: also *_L.png + label_colors.txt"
    )
    p_exp.add_argument(
        "--instances", action="store_true", help="coco: one annotation per connected component"
    )
    p_exp.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    p_exp.set_defaults(func=cmd_export)

    p_imp = sub.add_parser("import", help="import a labelled dataset into a project")
    p_imp.add_argument("project", metavar="PROJECT", help="project folder")
    p_imp.add_argument("source", metavar="SOURCE", help="dataset folder")
    p_imp.add_argument("--format", required=True, choices=IMPORT_FORMATS)
    p_imp.add_argument(
        "--replace",
        action="store_true",
        help="replace the labels of images that already have some (refused otherwise)",
    )
    p_imp.add_argument(
        "--palette", help="rgb: label_colors.txt or classes JSON; others: classes JSON"
    )
    p_imp.add_argument("--void", type=int, help="the dataset's void value (becomes unlabeled)")
    p_imp.set_defaults(func=cmd_import)
    return parser


COMMANDS = ("model", "predict", "eval", "train", "export", "import")


def run_gui(folder: str | None) -> int:
    """``segstudio [FOLDER]``: the window."""
    path = None
    if folder is not None:
        path = Path(folder)
        if not path.is_dir():
            print(f"segstudio: error: {folder}: not a folder", file=sys.stderr)
            return EXIT_USAGE
    from segstudio.gui.app import run

    return run(path)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        return run_gui(None)
    if len(argv) == 1 and argv[0] not in COMMANDS and not argv[0].startswith("-"):
        return run_gui(argv[0])
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return int(exc.code or 0)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.command is None:
        return run_gui(None)
    if getattr(args, "tile", 1024) < 64:
        print(f"segstudio {args.command}: error: --tile must be at least 64", file=sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except SegStudioError as exc:
        print(f"segstudio {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"segstudio {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
