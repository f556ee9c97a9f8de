"""Putting a finished dataset folder in place, and recovering from a kill during it.

An export writes into a hidden folder beside ``out``, ``.{out.name}.tmp-XXXXXXXX``
(:func:`new_temp_folder`), and :func:`put_in_place` moves it to ``out`` when it
is complete:

- no ``out`` yet: one rename;
- ``out`` exists (``overwrite``): on Linux one ``renameat2(RENAME_EXCHANGE)``
  swaps the two folders in a single step, so ``out`` is never missing, not even
  for an instant; the old dataset is then at the temporary name and is deleted.
  Where the system or the file system cannot exchange, two renames: ``out`` to
  ``.{out.name}.old-XXXXXXXX``, the new folder to ``out``, then the old one is
  deleted.

A kill (or a power cut) can leave a temporary folder (complete or not), an old
folder whose deletion was cut short, or, between the two renames of the
fallback, an old folder and no ``out``. :func:`recover_export`, which every
export runs first, puts that right: when ``out`` is missing and an old folder
is there, the old folder goes back to ``out`` (the export that would have
replaced it never finished); every other such leftover is deleted. Only names
of exactly these two patterns for this ``out`` are touched, and never a folder
an export of this process is writing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
from pathlib import Path

__all__ = ["new_temp_folder", "put_in_place", "recover_export", "remove_folder"]

_log = logging.getLogger(__name__)

# tempfile.mkdtemp's random part: 8 characters of this alphabet
_RANDOM = r"[a-z0-9_]{8}"
_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100

#: Temporary folders exports of this process are writing (recovery leaves them alone).
_active: set[Path] = set()
_active_guard = threading.Lock()


def _leftover_pattern(out: Path) -> re.Pattern[str]:
    return re.compile(rf"^\.{re.escape(out.name)}\.(?P<kind>tmp|old)-{_RANDOM}$")


def new_temp_folder(out: Path) -> Path:
    """Create ``.{out.name}.tmp-XXXXXXXX`` beside ``out`` (readable by others) and
    mark it as being written, so that :func:`recover_export` leaves it alone."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a dataset is for others to read too
    with _active_guard:
        _active.add(tmp)
    return tmp


def remove_folder(path: Path) -> None:
    """Delete a temporary or old folder (or a link of that name); failures are logged."""
    with _active_guard:
        _active.discard(path)
    try:
        if path.is_symlink() or not path.is_dir():
            path.unlink()
        else:
            shutil.rmtree(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        _log.warning("cannot delete %s: %s", path, exc)


def recover_export(out: Path) -> list[str]:
    """Finish what a killed export to ``out`` left behind; return what was done.

    When ``out`` is missing and an old folder ``.{out.name}.old-*`` is there,
    the old folder is renamed back to ``out``. Then every other
    ``.{out.name}.tmp-*`` and ``.{out.name}.old-*`` beside ``out`` is deleted
    (except the folders an export of this process is writing).

    Returns
    -------
    list of str
        One sentence per thing done, for logs and reports (empty when nothing was left).
    """
    out = Path(out)
    try:
        with os.scandir(out.parent) as it:
            names = [e.name for e in it]
    except (FileNotFoundError, NotADirectoryError):
        return []
    pattern = _leftover_pattern(out)
    with _active_guard:
        active = set(_active)
    found: dict[Path, str] = {}
    for name in sorted(names):
        match = pattern.match(name)
        if match is not None and out.parent / name not in active:
            found[out.parent / name] = match["kind"]
    done: list[str] = []
    if not os.path.lexists(out):
        olds = [p for p, kind in found.items() if kind == "old"]
        if olds:
            keep = max(olds, key=_mtime)
            os.rename(keep, out)
            del found[keep]
            done.append(f"restored {out} from {keep.name}, left by an export that was cut short")
    for path in found:
        remove_folder(path)
        done.append(f"removed {path.name}, left by an export that was cut short")
    for line in done:
        _log.warning("%s", line)
    return done


def put_in_place(tmp: Path, out: Path) -> None:
    """Move the finished folder ``tmp`` to ``out``, replacing an existing ``out``.

    ``out`` is never missing: an existing one is swapped in one step where the
    system can (Linux), else renamed aside first and restored if the second
    rename fails; :func:`recover_export` restores it after a kill in between.
    """
    try:
        if not os.path.lexists(out):
            os.rename(tmp, out)
            return
        if _exchange(tmp, out):
            remove_folder(tmp)  # tmp now holds the old dataset
            return
        aside = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        aside.rmdir()
        os.rename(out, aside)
        try:
            os.rename(tmp, out)
        except BaseException:
            os.rename(aside, out)
            raise
        remove_folder(aside)
    finally:
        with _active_guard:
            _active.discard(tmp)


def _mtime(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except OSError:
        return 0.0


def _renameat2() -> object | None:
    """glibc's ``renameat2``, or None where there is none (not Linux, old glibc, musl)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_RENAMEAT2 = _renameat2()
#: Set to False to use the two-rename fallback (tests of the recovery do).
EXCHANGE_ENABLED = True


def _exchange(a: Path, b: Path) -> bool:
    """Swap ``a`` and ``b`` atomically; False when the system or file system cannot."""
    fn = _RENAMEAT2
    if fn is None or not EXCHANGE_ENABLED:
        return False
    rc = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)  # type: ignore[operator]
    if rc == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, getattr(errno, "ENOTSUP", -1)):
        return False  # no RENAME_EXCHANGE here (old kernel, some file systems)
    raise OSError(code, os.strerror(code), str(b))
