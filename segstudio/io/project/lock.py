"""One writer per project: the lock file ``.segstudio/lock``.

A project is open for writing in one process at a time. :meth:`Project.open
<segstudio.io.project.Project.open>` takes an exclusive, non-blocking OS lock on
``.segstudio/lock`` (``flock`` on POSIX, ``msvcrt.locking`` on Windows) and
writes who holds it (program, process id, host, since when) into the file, so a
second process is refused with a message that names the first. The OS drops the
lock when its process ends, kill -9 and power cuts included: a lock file left
behind is never stale, it is simply free.

Within one process every :class:`~segstudio.io.project.Project` of a folder
shares one lock (counted), so the window, its workers and a second handle in
the same process keep working together. A file system that cannot lock
(some network shares) is used without the lock, with a warning.

Why a lock and not only SQLite's own: two windows on one project each keep
edits in memory numbered for the label set they loaded. A class migration in
one would make every later save of the other stale; with one writer per
project that cannot happen (read-only handles never write).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from segstudio.core.errors import ProjectError

__all__ = ["LOCK_NAME", "LockHolder", "ProjectLockedError"]

_log = logging.getLogger(__name__)

LOCK_NAME: Final[str] = "lock"
"""Name of the lock file inside ``.segstudio``."""

# Windows locks a byte range and then refuses reads of it: lock a byte far past
# the holder's description, so others can still read who holds the project.
_WIN_LOCK_OFFSET = 1 << 20
# errno values that mean "this file system cannot lock", not "someone holds it"
_NO_LOCKING = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, getattr(errno, "ENOTSUP", -1)}


@dataclass(frozen=True)
class LockHolder:
    """Who holds a project open for writing, as its lock file says."""

    program: str
    pid: int
    host: str
    since: float

    def describe(self) -> str:
        """``"segstudio (pid 1234 on host, since 2024-05-01 14:03)"``."""
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.since))
        return f"{self.program} (pid {self.pid} on {self.host}, since {when})"


class ProjectLockedError(ProjectError):
    """The project is open for writing in another process; ``holder`` says which, if known."""

    def __init__(self, message: str, holder: LockHolder | None = None) -> None:
        self.holder = holder
        super().__init__(message)

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        return (type(self), (str(self), self.holder))


class _Held:
    """The open lock file of one project in this process, and how many handles use it."""

    def __init__(self, fd: int | None) -> None:
        self.fd = fd
        self.count = 1


_held: dict[Path, _Held] = {}
_held_guard = threading.Lock()


def acquire(state_dir: Path) -> bool:
    """Take the write lock of the project whose state folder is ``state_dir``.

    Returns True when this call took the lock for the process (no handle of this
    process held it yet), False when another handle in this process already
    holds it: only the first handle may clean up after a crash.

    Raises
    ------
    ProjectLockedError
        Another process holds the lock.
    ProjectError
        The lock file cannot be created.
    """
    key = state_dir.resolve()
    with _held_guard:
        held = _held.get(key)
        if held is not None:
            held.count += 1
            return False
        fd = _lock_file(key)
        _held[key] = _Held(fd)
        return True


def release(state_dir: Path) -> None:
    """Give back one handle's share of the lock; the last one unlocks the file."""
    key = state_dir.resolve()
    with _held_guard:
        held = _held.get(key)
        if held is None:
            return
        held.count -= 1
        if held.count > 0:
            return
        del _held[key]
        if held.fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(held.fd, 0)  # nobody holds it now
            os.close(held.fd)  # closing drops the OS lock


def read_holder(state_dir: Path) -> LockHolder | None:
    """Who the lock file says holds the project (None when empty or unreadable)."""
    try:
        text = (state_dir / LOCK_NAME).read_text(encoding="utf-8", errors="replace")
        data = json.loads(text.strip("\0 \n") or "null")
        return LockHolder(
            program=str(data["program"]),
            pid=int(data["pid"]),
            host=str(data["host"]),
            since=float(data["since"]),
        )
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _lock_file(state_dir: Path) -> int | None:
    """Open and lock ``state_dir/lock``; the fd, or None when the file system cannot lock."""
    path = state_dir / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as exc:
        raise ProjectError(
            f"{path}: cannot create the project's lock file ({exc.strerror or exc})"
        ) from exc
    try:
        locked = _try_lock(fd)
    except OSError as exc:
        os.close(fd)
        if exc.errno in _NO_LOCKING:
            _log.warning(
                "%s: this file system cannot lock files (%s); make sure no other SegStudio "
                "writes to this project at the same time",
                path,
                exc.strerror or exc,
            )
            return None
        raise ProjectError(f"{path}: cannot lock the project ({exc.strerror or exc})") from exc
    if not locked:
        os.close(fd)
        holder = None
        for _ in range(5):  # the holder may be writing its description this instant
            holder = read_holder(state_dir)
            if holder is not None:
                break
            time.sleep(0.02)
        who = "another SegStudio" if holder is None else f"another SegStudio: {holder.describe()}"
        raise ProjectLockedError(
            f"{state_dir.parent}: the project is open for writing in {who}; close it there "
            "first (commands that only read it, such as export, still work)",
            holder,
        )
    _describe_holder(fd)
    return fd


def _try_lock(fd: int) -> bool:
    """Lock ``fd`` without waiting; False when another process holds it."""
    if sys.platform == "win32":
        import msvcrt

        os.lseek(fd, _WIN_LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EDEADLK):
                return False
            raise
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _describe_holder(fd: int) -> None:
    """Write who holds the lock into the file (best effort: only messages read it)."""
    text = json.dumps(
        {"program": _program(), "pid": os.getpid(), "host": _host(), "since": time.time()}
    )
    try:
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, text.encode("utf-8") + b"\n")
    except OSError as exc:
        _log.debug("cannot describe the lock holder: %s", exc)


def _program() -> str:
    """What this process is, for the message another one shows: ``segstudio export``."""
    argv = [a for a in sys.argv if a] or ["python"]
    name = Path(argv[0]).name
    if name in ("__main__.py", "-m", "-c"):
        name = "segstudio"
    words = [name, *(a for a in argv[1:2] if a.isidentifier())]  # a command, not a path
    return " ".join(words)[:80]


def _host() -> str:
    try:
        return socket.gethostname() or "this computer"
    except OSError:
        return "this computer"
