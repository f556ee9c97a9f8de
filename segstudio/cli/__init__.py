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

import argparse
import difflib
import errno
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from segstudio.cli.common import EXIT_USAGE
from segstudio.core.errors import SegStudioError

log = logging.getLogger("segstudio")

#: The commands, and the sub-commands of ``segstudio model`` (the parser's names).
COMMANDS = ("model", "predict", "eval", "train", "export", "import")
MODEL_COMMANDS = ("new", "info", "convert")


def run_gui(folder: str | None) -> int:
    """``segstudio [FOLDER]``: the window."""
    path = None
    if folder is not None:
        path = Path(folder)
        if not path.is_dir():
            fault = "not a folder" if path.exists() else "no such folder"
            print(f"segstudio: error: {folder}: {fault}", file=sys.stderr)
            return EXIT_USAGE
    try:
        from segstudio.gui.app import run
    except ImportError as exc:  # Qt's own system libraries missing (a minimal Linux)
        print(f"segstudio: error: the window cannot start: {_qt_import_hint(exc)}", file=sys.stderr)
        return 1
    return run(path)


#: Debian/Ubuntu packages Qt needs for the window: a copy of segstudio.gui.app.XCB_PACKAGES
#: (that module imports Qt, so it cannot say this when Qt fails to load; a test keeps the
#: two in step).
QT_PACKAGES = (
    "libegl1 libgl1 libfontconfig1 libfreetype6 libglib2.0-0 libdbus-1-3 libx11-xcb1 "
    "libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 "
    "libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-sync1 libxcb-xfixes0 libxcb-xkb1"
)


def _qt_import_hint(exc: ImportError) -> str:
    """What failed to load, and what to install."""
    what = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, ModuleNotFoundError):
        return f"{what}; install SegStudio with its dependencies: pip install -e ."
    if sys.platform.startswith("linux"):
        return f"{what}; Qt needs system libraries: sudo apt-get install {QT_PACKAGES}"
    return what


def _near(word: str, choices: Sequence[str]) -> str | None:
    """The choice ``word`` is a near miss of (a typo), or None."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return close[0] if close else None


def _hint(word: str, choices: Sequence[str]) -> str:
    """``; did you mean 'predict'?`` for a near miss, else the list of choices."""
    near = _near(word, choices)
    if near is not None:
        return f"; did you mean {near!r}?"
    return f"; the commands are {', '.join(choices)}"


def unknown_command(argv: Sequence[str]) -> str | None:
    """The one-line error for a mistyped command or ``model`` sub-command, else None.

    Options (``-v``) are skipped: no option of ``segstudio`` or ``segstudio model``
    takes a value, so the first other word is the command.
    """
    words = [a for a in argv if not a.startswith("-")]
    if not words:
        return None
    word = words[0]
    if word in COMMANDS:
        if word != "model":
            return None
        rest = argv[argv.index("model") + 1 :]
        if not rest or rest[0].startswith("-") or rest[0] in MODEL_COMMANDS:
            return None  # argparse answers a missing sub-command, or --help
        return (
            f"segstudio model: error: unknown command {rest[0]!r}"
            f"{_hint(rest[0], MODEL_COMMANDS)} (see segstudio model --help)"
        )
    hint = f"; did you mean 'model {word}'?" if word in MODEL_COMMANDS else _hint(word, COMMANDS)
    return f"segstudio: error: unknown command {word!r}{hint} (see segstudio --help)"


def _opens_folder(word: str) -> bool:
    """Whether ``segstudio WORD`` means the window: anything but a command, or a
    word of letters that is no file or folder and a near miss of a command name
    (``segstudio predcit``)."""
    if word in COMMANDS or word.startswith("-"):
        return False
    if Path(word).exists() or not word.isalpha():
        return True  # a folder opens; a file, or a path that is not there, is told so
    return word not in MODEL_COMMANDS and _near(word, COMMANDS) is None


#: The options of ``segstudio`` itself that may go with a folder (``segstudio -v FOLDER``).
WINDOW_OPTIONS = ("-v", "--verbose")


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        return run_gui(None)
    # the window's own options may stand before or after the folder: -v FOLDER, FOLDER -v
    words = [a for a in argv if a not in WINDOW_OPTIONS]
    if len(words) <= 1 and (not words or _opens_folder(words[0])):
        _configure_logging(len(words) < len(argv))
        return run_gui(words[0] if words else None)
    mistake = unknown_command(argv)
    if mistake is not None:
        print(mistake, file=sys.stderr)
        return EXIT_USAGE
    from segstudio.cli.parser import build_parser

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return int(exc.code or 0)
    _configure_logging(args.verbose)
    if args.command is None:
        return run_gui(None)
    if getattr(args, "model_command", None):
        args.command = f"model {args.model_command}"  # "segstudio model info: error: ..."
    if getattr(args, "tile", 1024) < 64:
        print(f"segstudio {args.command}: error: --tile must be at least 64", file=sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except SegStudioError as exc:
        print(f"segstudio {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        line = os_error_line(exc, args)
        if line is None:
            raise  # not a condition of the machine a user can fix: a bug, keep its traceback
        print(f"segstudio {args.command}: error: {line}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"segstudio {args.command}: interrupted", file=sys.stderr)
        return 130


#: errno values that are the machine's state, not a bug: a full disk or quota, a
#: read-only file system, no permission, a file too large for the file system.
_USER_ERRNOS = {
    code: hint
    for name, hint in (
        ("ENOSPC", "free some space or write elsewhere"),
        ("EDQUOT", "your disk quota is used up; free some space or write elsewhere"),
        ("EROFS", "the file system is read-only; write elsewhere"),
        ("EACCES", "check its permissions"),
        ("EPERM", "check its permissions"),
        ("EFBIG", "the file is too large for this file system"),
    )
    if (code := getattr(errno, name, None)) is not None
}


def os_error_line(exc: OSError, args: argparse.Namespace | None = None) -> str | None:
    """The one-line message for an OSError a user can act on (disk full, read-only,
    permission denied), naming the path; None for any other OSError."""
    hint = _USER_ERRNOS.get(exc.errno) if exc.errno is not None else None
    if hint is None:
        return None
    reason = (exc.strerror or os.strerror(exc.errno or 0)).rstrip(".").lower()
    # A copy that fails for want of space names its source first: the destination,
    # the file being written, is the one to name then.
    write_side = exc.errno not in (errno.EACCES, errno.EPERM)
    where = (exc.filename2 or exc.filename) if write_side else (exc.filename or exc.filename2)
    if where is None:
        names = ("out", "project")
        target = next((getattr(args, k) for k in names if getattr(args, k, None)), None)
        return f"{reason} while writing {target}; {hint}" if target else f"{reason}; {hint}"
    shown = os.fsdecode(where) if isinstance(where, str | bytes) else str(where)
    name = os.path.basename(shown)
    if name.startswith(".") and ".tmp" in name:  # an atomic write's temp file: name its folder
        shown = os.path.dirname(shown) or "."
    return f"{shown}: {reason}; {hint}"


__all__ = ["COMMANDS", "EXIT_USAGE", "MODEL_COMMANDS", "main", "run_gui", "unknown_command"]
