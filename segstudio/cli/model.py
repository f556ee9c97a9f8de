"""``segstudio model new | info | convert``: create, inspect and rewrite model files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from segstudio.cli.common import labelset_arg
from segstudio.core.errors import UsageError

#: The registry's names (segstudio.model.arch.ARCHITECTURES), spelled out so that
#: building the parser imports no torch; a unit test keeps the two in step.
_ARCH_NAMES = "segnet, segnet_basic, unet, fcn8s, deconvnet, deeplab, pspnet"


def cmd_model_new(args: argparse.Namespace) -> int:
    from segstudio.model.arch import ArchSpec
    from segstudio.model.files import new_model, save_model

    labelset = labelset_arg(args.classes)
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
