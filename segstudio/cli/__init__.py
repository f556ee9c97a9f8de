"""The ``segstudio`` command: the window by default, and the headless engine.

Every sub-command validates its arguments before it writes anything; a bad
argument or file prints one line on stderr and exits with code 2. Outputs are
written atomically, so ``--out`` never holds a half-written file.

torch is imported only inside the commands that need it, so ``segstudio``
(the window) and ``--help`` start fast.

Modules: :mod:`~segstudio.cli.parser` (the options), :mod:`~segstudio.cli.common`
(argument checks, progress bars), and one module per command: ``model``,
``predict``, ``evaluate`` (eval), ``train``, ``datasets`` (export, import).
The work itself lives in the layers below (session, training, io).
"""
from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from segstudio.cli.common import EXIT_USAGE
from segstudio.core.errors import SegStudioError

log = logging.getLogger("segstudio")

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
    from segstudio.cli.parser import build_parser

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


__all__ = ["COMMANDS", "EXIT_USAGE", "main", "run_gui"]
