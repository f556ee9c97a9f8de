"""``segstudio export`` and ``segstudio import``: datasets in and out of a project."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from segstudio.cli.common import check_folder_arg, count_bar, open_project, split_arg
from segstudio.core.errors import UsageError
from segstudio.core.jobs import drive


def cmd_export(args: argparse.Namespace) -> int:
    if args.camvid_void is not None and not 0 <= args.camvid_void <= 255:
        raise UsageError(f"--camvid-void must be 0..255, got {args.camvid_void}")
    split = split_arg(args.split)
    check_folder_arg(args.project)  # before OpenCV and the store are imported
    from segstudio.io.datasets import ExportOptions, export_dataset

    options = ExportOptions(
        format=args.format,
        split=split,
        seed=args.seed,
        include_predicted=args.include_predicted,
        camvid_void=args.camvid_void,
        camvid_color=args.camvid_color,
        instances=args.instances,
        overwrite=args.overwrite,
    )
    with open_project(args.project, read_only=True) as project, count_bar("export") as bar:
        report = drive(export_dataset(project, Path(args.out), options), bar)
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
    if args.void is not None and not 0 <= args.void <= 255:
        raise UsageError(f"--void must be 0..255, got {args.void}")
    source = Path(args.source)
    if not source.is_dir():
        raise UsageError(f"{source}: no such dataset folder")
    palette = Path(args.palette) if args.palette else None
    if palette is not None and not palette.is_file():
        raise UsageError(f"--palette {palette}: no such file")
    check_folder_arg(args.project, create=True)  # before OpenCV and the store are imported
    from segstudio.io.datasets import import_dataset

    with open_project(args.project, create=True) as project:
        gen = import_dataset(
            project, source, args.format, palette=palette, void=args.void, replace=args.replace
        )
        with count_bar("import") as bar:
            report = drive(gen, bar)
    print(
        f"imported {report.labels} label map(s) ({report.images} new image(s), "
        f"{report.classes.num_classes} classes of {report.classes.name!r}) from {source}"
    )
    for line in report.warnings:
        print(f"segstudio import: warning: {line}", file=sys.stderr)
    return 0
