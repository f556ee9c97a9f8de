"""Atomic file writes: nothing half-written is ever visible at the target path.

The data goes to a hidden temporary file in the target's own folder (so the
final rename never crosses a file system), is flushed to disk with ``fsync``,
and then ``os.replace`` swaps it onto the target in one step. On POSIX the
folder is fsynced too, so the rename itself survives a power cut. If anything
fails, the temporary file is removed and the old target is left untouched.

Errors from the file system (``OSError``: a missing folder, no permission, a
full disk) propagate unchanged.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_bytes", "atomic_write_text"]

_log = logging.getLogger(__name__)

# Keep temp names under the usual 255-byte limit of a file name.
_MAX_NAME_STEM = 180


def _temp_path(target: Path) -> Path:
    """A new, unused hidden name next to ``target`` with the same suffix, created empty."""
    name = target.name[:_MAX_NAME_STEM]
    while True:
        temp = target.with_name(f".{name}.{secrets.token_hex(4)}.tmp{target.suffix}")
        try:
            # O_EXCL: never reuse an existing file; 0o666 & ~umask gives the
            # permissions an ordinary ``open(path, "w")`` would.
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return temp


def _fsync_file(path: Path) -> None:
    # Open read-write: Windows' fsync (_commit) needs a writable handle.
    fd = os.open(path, os.O_RDWR | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX only; Windows cannot open folders)."""
    if os.name == "nt":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError as exc:  # e.g. a folder we may write to but not read
        _log.debug("cannot open %s to fsync it: %s", folder, exc)
        return
    try:
        os.fsync(fd)
    except OSError as exc:  # some file systems (network, FUSE) refuse fsync on folders
        _log.debug("fsync of folder %s failed: %s", folder, exc)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path to write to; on success it atomically becomes ``path``.

    The temporary file is hidden (``.{name}.{random}.tmp{suffix}``), lives in the
    same folder as ``path`` and keeps its suffix, so libraries that choose the
    format by suffix (PIL, OpenCV) still do. It exists (empty) when yielded; the
    caller may overwrite it by path.

    On a normal exit the file is fsynced, ``os.replace``d onto ``path`` and the
    folder is fsynced (POSIX). If ``path`` already exists its permission bits are
    kept. On an exception the temporary file is removed, ``path`` is untouched,
    and the exception propagates.

    Parameters
    ----------
    path : str or os.PathLike
        The final file. Its folder must exist.

    Yields
    ------
    Path
        The temporary file to write.

    Examples
    --------
    >>> with atomic_path("mask.png") as tmp:  # doctest: +SKIP
    ...     Image.fromarray(mask).save(tmp)
    """
    target = Path(path)
    temp = _temp_path(target)
    # what the umask allows a new file; a writer that recreates the file by path
    # (safetensors does, with 0600) must not make it private
    mode = stat.S_IMODE(os.stat(temp).st_mode)
    try:
        yield temp
        _fsync_file(temp)
        with contextlib.suppress(FileNotFoundError):
            mode = stat.S_IMODE(os.stat(target).st_mode)
        os.chmod(temp, mode)
        os.replace(temp, target)
    except BaseException:
        # BaseException too: a KeyboardInterrupt must not leave a temp file behind.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    _fsync_dir(target.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically.

    Parameters
    ----------
    path : str or os.PathLike
        The file to create or replace. Its folder must exist.
    data : bytes
        The complete new content.
    """
    with atomic_path(path) as temp, open(temp, "wb") as fh:
        fh.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically, exactly as given (no newline translation).

    Parameters
    ----------
    path : str or os.PathLike
        The file to create or replace. Its folder must exist.
    text : str
        The complete new content.
    encoding : str, optional
        Text encoding, UTF-8 by default.
    """
    atomic_write_bytes(path, text.encode(encoding))
