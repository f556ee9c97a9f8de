"""``segstudio train``: fine-tune or train a model on a project or a dataset folder.

The training itself is :func:`segstudio.training.loop.fine_tune`, the same
generator the window runs; here it runs in the foreground (or under
``torchrun``, data-parallel), with a progress bar, and
:func:`segstudio.session.training.summary_lines` says how it went.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from segstudio.cli.common import Bar, labelset_arg, progress_bar
from segstudio.core.errors import TrainingError, UsageError
from segstudio.core.jobs import drive

#: TrainConfig fields set by a flag of the same name: its errors name the flag.
_FLAG_FIELDS = (
    "epochs",
    "minutes",
    "batch_size",
    "crop",
    "lr",
    "seed",
    "device",
    "precision",
    "distill_weight",
)


def _train_args(args: argparse.Namespace) -> tuple[Path, Path, Any]:
    """Check the arguments of ``train`` before anything is loaded or written
    (and before torch is imported: a mistyped argument is answered at once)."""
    from segstudio.training.config import TrainConfig

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
    _refuse_existing(out, args)
    if args.width is not None and args.init is not None:
        raise UsageError("--width applies to a new model (--arch), not to --init")
    if args.init is not None and not Path(args.init).is_file():
        raise UsageError(f"--init {args.init}: model file not found")
    if args.teacher is not None and not Path(args.teacher).is_file():
        raise UsageError(f"--teacher {args.teacher}: model file not found")
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
    try:
        config = TrainConfig(
            epochs=args.epochs,
            minutes=args.minutes,
            batch_size=args.batch_size,
            crop=args.crop,
            freeze_encoder=args.freeze_encoder,
            precision=args.precision,
            device=args.device,
            seed=args.seed,
            distill_weight=args.distill_weight,
            **recipe,
        )
    except TrainingError as exc:
        message = str(exc)  # "bad training recipe: batch_size is 0, must be 1..4096"
        for field in _FLAG_FIELDS:
            message = message.replace(f" {field} is ", f" --{field.replace('_', '-')} is ")
        raise UsageError(message) from exc
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


def _quick_bar(p: Any, bar: Any) -> Any:
    """Show a quick-train report: images read, the fit, validation images."""
    if bar is None or getattr(bar, "segstudio_kind", None) != p.kind:
        if bar is not None:
            bar.close()
        bar = progress_bar(p.total, p.kind)
        bar.segstudio_kind = p.kind
    bar.update(p.done - bar.n)
    if p.kind == "fit":
        bar.write(p.message, file=sys.stderr)
    return bar


def _refuse_existing(out: Path, args: argparse.Namespace) -> None:
    """A trained model is never replaced without asking: ``--overwrite`` says so
    (``--resume`` continues the run that writes it, and may write it again)."""
    if out.exists() and not args.overwrite and not (args.resume and not args.quick):
        raise UsageError(
            f"--out {out}: exists; choose another file, add --overwrite to replace it"
            + ("" if args.quick else ", or --resume to continue the run that wrote it")
        )


def cmd_train_quick(args: argparse.Namespace) -> int:
    """``train --quick``: fit only the live learner's head on a frozen SegNet."""
    from segstudio.core.bundled import bundled_model_path

    source = Path(args.source)
    if not source.is_dir():
        raise UsageError(f"{source}: no such folder (a project or a dataset folder)")
    out = Path(args.out)
    if out.suffix != ".safetensors" or not out.parent.is_dir() or out.is_dir():
        raise UsageError(f"--out {out}: must be a .safetensors file in an existing folder")
    _refuse_existing(out, args)
    for flag in ("arch", "width", "epochs", "minutes", "resume", "checkpoint_dir", "lr", "teacher"):
        if getattr(args, flag):
            raise UsageError(f"--{flag.replace('_', '-')} does not apply to --quick")
    if args.replay and not Path(args.replay).is_dir():
        raise UsageError(f"--replay {args.replay}: no such folder of images")
    init_path = args.init or bundled_model_path()
    if init_path is None:
        raise UsageError("--quick reads a SegNet's features: give --init MODEL")
    if not Path(init_path).is_file():
        which = f"--init {init_path}" if args.init else f"the bundled model {init_path}"
        raise UsageError(f"{which}: model file not found")
    labelset = labelset_arg(args.classes) if args.classes else None
    from segstudio.io.images import list_images
    from segstudio.model.files import load_model, save_model
    from segstudio.training.data import load_source
    from segstudio.training.live_quick import quick_train, spread

    base = load_model(init_path)
    data = load_source(
        source, void=args.void, labelset=labelset, val_fraction=args.val_fraction, seed=args.seed
    )
    replay = spread(list_images(args.replay)) if args.replay else []
    device = "cpu" if args.device == "auto" else args.device
    with Bar(_quick_bar) as bar:
        model, metrics = drive(quick_train(data, base, device=device, replay=replay), bar)
    save_model(out, model)
    print(f"quick-trained the live learner on {data.describe()}")
    if metrics is not None:
        print(f"val:    mean IoU {metrics['mean_iou']:.4f} on {metrics['images']} image(s)")
    print(f"wrote {out}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    if args.quick:
        return cmd_train_quick(args)
    if args.replay:
        raise UsageError("--replay applies to --quick (the live learner) only")
    out, ckpt, config = _train_args(args)
    labelset = labelset_arg(args.classes) if args.classes else None
    from segstudio.model.arch import ArchSpec
    from segstudio.model.files import load_model, save_model
    from segstudio.training.data import load_source
    from segstudio.training.ddp import distributed
    from segstudio.training.loop import CHECKPOINT_NAME, fine_tune

    init = load_model(args.init) if args.init else None
    if init is not None and init.info.arch.name == "live":
        from segstudio.model.live import base_model

        init = base_model(init)  # deep training trains the live model's SegNet
    # a live model teaches as it predicts: its head's classes, not its base network's
    teacher = load_model(args.teacher) if args.teacher else None
    arch = None
    if init is None:
        params: dict[str, Any] = {} if args.width is None else {"width": args.width}
        arch = ArchSpec(args.arch or "segnet", params)
    from segstudio.io.datasets.layouts import classes_file
    from segstudio.io.project import STATE_DIR_NAME

    source = Path(args.source)
    if (
        labelset is None
        and init is not None
        and not (source / STATE_DIR_NAME).is_dir()
        and classes_file(source) is None
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
            data,
            init=init,
            arch=arch,
            config=config,
            checkpoint_dir=ckpt,
            resume=resume,
            teacher=teacher,
        )
        with Bar(_training_bar) as bar:
            result = drive(gen, bar if env.is_main else None)
        if not env.is_main:
            return 0
        from segstudio.training.checkpoint import sweep_temp_writes

        sweep_temp_writes(out.parent, out.name)  # what a train killed while saving left
        save_model(out, result.model)
    prov = result.model.info.provenance
    print(f"trained {prov['steps']} step(s) in {prov['duration_s']:.1f} s on {data.describe()}")
    from segstudio.session.training import summary_lines

    for line in summary_lines(result):
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
