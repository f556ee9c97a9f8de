"""``segstudio model new | info | convert``: create, inspect and rewrite model files."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segstudio.cli.common import labelset_arg
from segstudio.core.errors import UsageError

if TYPE_CHECKING:
    from segstudio.model.files import ModelInfo, TensorShapes

#: The registry's names (segstudio.model.arch.ARCHITECTURES), spelled out so that
#: building the parser imports no torch; a unit test keeps the two in step.
_ARCH_NAMES = "segnet, segnet_basic, unet, fcn8s, deconvnet, deeplab, pspnet"


def new_file_arg(out: Path, overwrite: bool) -> Path:
    """``--out`` of a command that writes one model file: an existing file (likely a
    trained model) is replaced only with ``--overwrite``, a folder never."""
    if out.is_dir():
        raise UsageError(f"--out {out}: is a folder; give the model file to write")
    if out.exists() and not overwrite:
        raise UsageError(
            f"--out {out}: the file exists; choose another name, or add --overwrite to replace it"
        )
    return out


def cmd_model_new(args: argparse.Namespace) -> int:
    out = new_file_arg(Path(args.out), args.overwrite)  # before torch is imported
    labelset = labelset_arg(args.classes)
    from segstudio.model.arch import ArchSpec
    from segstudio.model.files import new_model, save_model

    params: dict[str, Any] = {}
    if args.width is not None:
        params["width"] = args.width
    model = new_model(ArchSpec(args.arch, params), labelset, seed=args.seed)
    save_model(out, model)
    print(
        f"wrote untrained {args.arch} model for {labelset.num_classes} classes "
        f"({labelset.name}) to {out}"
    )
    return 0


#: safetensors' names of the floating-point dtypes a model file may hold.
_FLOATS = {"F16": "float16", "BF16": "bfloat16", "F32": "float32", "F64": "float64"}


def _number(value: Any, fmt: str) -> str:
    """``value`` formatted, or as it is when the metadata holds something else."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return format(value, fmt)
    return str(value)


def _names(names: Sequence[str], limit: int = 100) -> str:
    """Class names joined up to about ``limit`` characters, then how many more."""
    shown: list[str] = []
    for i, name in enumerate(names):
        if shown and len(", ".join([*shown, name])) > limit:
            return ", ".join(shown) + f" and {len(names) - i} more"
        shown.append(name)
    return ", ".join(shown)


def _lineage(prov: Mapping[str, Any]) -> str:
    """How a model came about: its kind and the data it was trained on."""
    kind = str(prov.get("kind", "unknown"))
    if kind == "untrained":
        return f"untrained (seed {prov.get('seed', '?')})"
    words = kind + (f" ({prov['head']})" if prov.get("head") else "")
    if prov.get("source"):
        words += f" on {prov['source']}"
    return words


def _training(prov: Mapping[str, Any]) -> str | None:
    """How long a model trained, on what, on which device; None for an untrained one."""
    parts: list[str] = []
    if "train_images" in prov:
        parts.append(
            f"{prov['train_images']} training + {prov.get('val_images', '?')} validation image(s)"
        )
    if "epochs" in prov:
        parts.append(
            f"{_number(prov['epochs'], 'g')} epoch(s)"
            + (f" ({prov['steps']} steps)" if "steps" in prov else "")
        )
    duration = prov.get("duration_s")
    if isinstance(duration, int | float) and not isinstance(duration, bool):
        parts.append(f"{duration / 3600:.1f} h" if duration >= 3600 else f"{duration:.0f} s")
    if prov.get("device"):
        parts.append(
            str(prov["device"]) + (f" ({prov['precision']})" if prov.get("precision") else "")
        )
    if prov.get("stopped_early"):
        parts.append(f"stopped early: {prov['stopped_early']}")
    return ", ".join(parts) or None


def _parents(prov: Mapping[str, Any]) -> list[str]:
    """The chain of models this one was trained from, nearest first."""
    lines: list[str] = []
    parent = prov.get("parent")
    while isinstance(parent, Mapping) and len(lines) < 20:
        arch = parent.get("arch")
        name = arch.get("name", "?") if isinstance(arch, Mapping) else "?"
        line = f"{parent.get('path') or '(unsaved model)'}: {name}"
        if parent.get("mean_iou") is not None:
            line += f", mean IoU {_number(parent['mean_iou'], '.4f')}"
        grand = parent.get("provenance")
        if isinstance(grand, Mapping):
            line += f"; {_lineage(grand)}"
        lines.append(line)
        parent = grand.get("parent") if isinstance(grand, Mapping) else None
    return lines


def info_lines(path: Path, info: ModelInfo, shapes: TensorShapes) -> list[str]:
    """The short summary ``segstudio model info`` prints (``--full`` prints everything)."""
    values = sum(math.prod(shape) for shape, _dtype in shapes.values())
    floats = sorted({_FLOATS[d] for _shape, d in shapes.values() if d in _FLOATS})
    size = path.stat().st_size / 2**20
    params = ", ".join(f"{k} {v}" for k, v in sorted(info.arch.params.items()))
    labels = info.labelset
    lines = [
        f"file          {path} ({size:.1f} MiB, {values / 1e6:.1f} M weights"
        + (f" in {' and '.join(floats)})" if floats else ")"),
        f"architecture  {info.arch.name}" + (f" ({params})" if params else ""),
        f"classes       {labels.num_classes} ({labels.name}): {_names(labels.names)}",
    ]
    metrics = info.metrics
    if "mean_iou" in metrics:
        line = f"metrics       mean IoU {_number(metrics['mean_iou'], '.4f')}"
        if "pixel_accuracy" in metrics:
            line += f", pixel accuracy {_number(metrics['pixel_accuracy'], '.4f')}"
        if "images" in metrics:
            line += f" on {metrics['images']} validation image(s)"
        lines.append(line)
    else:
        lines.append("metrics       none (not evaluated)")
    prov = info.provenance
    lines.append(f"lineage       {_lineage(prov)}")
    training = _training(prov)
    if training is not None:
        lines.append(f"training      {training}")
    lines += [f"  from        {parent}" for parent in _parents(prov)]
    from segstudio.io.project.models import teacher_of  # io loads OpenCV: not before the checks

    teacher = teacher_of(prov)
    if teacher is not None:
        line = f"  teacher     {teacher.arch or '?'}"
        line += "" if teacher.width is None else f" width {teacher.width:g}"
        if teacher.mean_iou is not None:
            line += f", mean IoU {teacher.mean_iou:.4f}"
        if teacher.path:  # where it was then: a file may since have been replaced
            line += f" (then at {teacher.path})"
        if teacher.weight is not None:
            line += f", distilled at weight {teacher.weight:g}"
        lines.append(line)
    if "created" in prov:
        made = f"created       {prov['created']}"
        if prov.get("created_by") or prov.get("host"):
            made += f" by {prov.get('created_by', '?')} on {prov.get('host', '?')}"
        versions = [
            f"{name} {prov[key]}"
            for name, key in (("SegStudio", "segstudio_version"), ("torch", "torch_version"))
            if key in prov
        ]
        lines.append(made + (f" ({', '.join(versions)})" if versions else ""))
    return lines


def cmd_model_info(args: argparse.Namespace) -> int:
    """A short summary of a model file, or with ``--full`` its whole metadata as JSON."""
    path = Path(args.file)
    # checked here, before torch is imported (a second): a typo is answered at once
    if not path.exists():
        raise UsageError(f"{path}: model file not found")
    if path.is_dir():
        raise UsageError(f"{path}: is a folder, not a model file")
    from segstudio.model.files import METADATA_KEY, read_header, read_model_info

    info = read_model_info(path)
    if args.full:
        print(json.dumps(info.to_dict(), indent=2))
        return 0
    _data, shapes = read_header(path, METADATA_KEY)
    for line in info_lines(path, info, shapes):
        print(line)
    print("(--full: the whole metadata as JSON)")
    return 0


def cmd_model_convert(args: argparse.Namespace) -> int:
    src, out = Path(args.file), Path(args.out)
    if not src.is_file():
        raise UsageError(f"{src}: model file not found")  # checked before torch is imported
    if out.resolve() == src.resolve():
        raise UsageError("--out must be another file than the input")
    new_file_arg(out, args.overwrite)
    from segstudio.model.files import load_model, save_model

    calibration_dir = Path(args.calibrate) if args.calibrate else None
    if calibration_dir is not None and not calibration_dir.is_dir():
        raise UsageError(f"--calibrate {calibration_dir}: not a folder of images")
    if args.calibration_images < 1:
        raise UsageError("--calibration-images must be at least 1")
    model = load_model(src)
    extra = ""
    if calibration_dir is not None:
        model, extra = _calibrated(model, calibration_dir, args.calibration_images)
    save_model(out, model, half=args.half)
    kind = "float16" if args.half else "float32"
    print(f"wrote {out} ({kind} weights{extra}, {out.stat().st_size / 2**20:.1f} MiB)")
    return 0


def _calibrated(model: Any, folder: Path, count: int) -> tuple[Any, str]:
    """``model`` with an int8 calibration measured on ``count`` images of ``folder``,
    spread evenly over its sorted listing (so consecutive video frames do not dominate)."""
    from segstudio.io.images import list_images, read_image
    from segstudio.model.quantize import calibrate, quantizable, with_calibration

    if not quantizable(model.network):
        raise UsageError(
            f"--calibrate: {model.info.arch.name} has no int8 path (SegNet-family models only)"
        )
    images = list_images(folder)
    if not images:
        raise UsageError(f"--calibrate {folder}: no images found")
    step = max(1, len(images) // count)
    picked = images[::step][:count]
    calibration = calibrate(model, (read_image(p).rgb for p in picked), max_images=len(picked))
    return with_calibration(model, calibration), f", int8 calibration on {len(picked)} image(s)"
