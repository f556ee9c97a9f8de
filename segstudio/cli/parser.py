"""The ``segstudio`` argument parser: every command, option and help text.

Building it imports neither torch nor OpenCV, so ``--help`` is instant; the
commands import what they need when they run.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from segstudio import __version__
from segstudio.cli import MODEL_COMMANDS
from segstudio.cli.common import EXIT_USAGE
from segstudio.cli.datasets import cmd_export, cmd_import
from segstudio.cli.evaluate import cmd_eval
from segstudio.cli.model import _ARCH_NAMES, cmd_model_convert, cmd_model_info, cmd_model_new
from segstudio.cli.predict import cmd_predict
from segstudio.cli.train import cmd_train
from segstudio.core.labelset import PRESETS

# Copies of segstudio.io.datasets.FORMATS / IMPORT_FORMATS, so building the parser does not
# import OpenCV (tests/unit/io/datasets/test_export.py checks they agree).
EXPORT_FORMATS = ("index", "camvid", "voc", "cityscapes", "coco")
IMPORT_FORMATS = ("index", "rgb", "voc", "camvid", "cvat", "cityscapes", "coco")


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_runtime_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps"
    )
    p.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "fp32", "bf16", "fp16", "int8"],
        help="compute precision (auto: bf16 on a CPU with AMX or a GPU that has it; on "
        "other CPUs int8 for a model with an int8 calibration, else bf16 where the CPU "
        "has bf16 units, else fp32)",
    )
    p.add_argument(
        "--tile", type=int, default=1024, help="predict larger images in tiles of N x N pixels"
    )
    p.add_argument(
        "--tile-workers",
        type=int,
        default=None,
        metavar="N",
        help="on a CPU, predict N tiles of a large image at once, each on its share of the "
        "threads (default: 2 where there are 2 threads or more)",
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
    # prog: each command's messages start "segstudio predict: ..." (argparse would
    # otherwise prefix them with the whole usage line above)
    sub = parser.add_subparsers(
        dest="command", parser_class=_Parser, metavar="COMMAND", prog="segstudio"
    )

    p_model = sub.add_parser("model", help="create or inspect model files")
    msub = p_model.add_subparsers(
        dest="model_command",
        parser_class=_Parser,
        required=True,
        metavar="{" + ",".join(MODEL_COMMANDS) + "}",
        prog="segstudio model",
    )
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
    p_new.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p_new.set_defaults(func=cmd_model_new)
    p_info = msub.add_parser(
        "info",
        help="summarise a model file: architecture, classes, size, metrics, lineage",
        description="Summarise a model file from its header (no weights are loaded).",
    )
    p_info.add_argument("file", metavar="FILE")
    p_info.add_argument(
        "--full",
        action="store_true",
        help="print the whole metadata as JSON (with the training and validation image names)",
    )
    p_info.set_defaults(func=cmd_model_info)
    p_conv = msub.add_parser("convert", help="rewrite a model file (e.g. with float16 weights)")
    p_conv.add_argument("file", metavar="FILE")
    p_conv.add_argument("--out", required=True, help="model file to write (.safetensors)")
    p_conv.add_argument("--half", action="store_true", help="store weights as float16")
    p_conv.add_argument(
        "--calibrate",
        metavar="DIR",
        help="measure an int8 calibration on images of DIR and store it in the file "
        "(a SegNet-family model then predicts in int8 on CPUs without AMX)",
    )
    p_conv.add_argument(
        "--calibration-images",
        type=int,
        default=16,
        help="images of --calibrate DIR used, spread over it (default 16)",
    )
    p_conv.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p_conv.set_defaults(func=cmd_model_convert)

    p_pred = sub.add_parser("predict", help="predict class masks for images")
    p_pred.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR")
    p_pred.add_argument("--model", help="model file (.safetensors); default: the bundled model")
    p_pred.add_argument("--out", required=True, help="folder for <stem>.png and <stem>_color.png")
    p_pred.add_argument(
        "--overwrite",
        action="store_true",
        help="replace files of earlier predictions in --out (refused otherwise), and allow "
        "--out to be a folder of the input images (an input image is never replaced)",
    )
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
    p_train.add_argument(
        "--teacher",
        metavar="MODEL",
        help="distil: also train the model to match this model's outputs (same classes), on "
        "every pixel; e.g. a light model (--arch segnet --width 0.25) from the bundled one",
    )
    p_train.add_argument(
        "--distill-weight",
        type=float,
        default=0.5,
        help="with --teacher: share of the loss that matches the teacher (default 0.5)",
    )
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
    p_train.add_argument(
        "--replay",
        metavar="FOLDER",
        help="with --quick: unlabelled images of the same kind; the base model's confident "
        "predictions on up to 10 of them (spread over the folder) are learnt too, so what it "
        "knew and the labels do not show is kept (when it knows every class)",
    )
    p_train.add_argument("--out", required=True, help="model file to write (.safetensors)")
    p_train.add_argument(
        "--overwrite", action="store_true", help="replace an existing --out model file"
    )
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
