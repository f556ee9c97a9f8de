"""Temporary files of killed atomic writers: recognising and sweeping them.

Every file SegStudio writes into a project goes through
:mod:`segstudio.core.atomic`, which writes a hidden temporary file beside the
target (``.{name}.{8 hex digits}.tmp{suffix}``, e.g.
``.settings.json.1f2e3d4c.tmp.json``) and renames it over the target. A kill
between the two leaves the temporary file. :func:`sweep_temp_files` removes
exactly those: names of that pattern, last changed before the sweep began, in
the folders the store writes. Nothing else is touched, so a user's own file
(``notes.tmp.json``, ``settings.json.damaged-...``) is never deleted.

The sweep runs when a process takes a project's write lock
(:mod:`segstudio.io.project.lock`): no other process may then be writing
there, so every such file is a leftover.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Final

_log = logging.getLogger(__name__)

#: ``.{name}.{token_hex(4)}.tmp{suffix}``, as :func:`segstudio.core.atomic.atomic_path` makes.
TEMP_NAME: Final[re.Pattern[str]] = re.compile(
    r"^\.(?P<name>.+)\.[0-9a-f]{8}\.tmp(?P<suffix>\.[^.]*)?$"
)


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is the temporary file name of an atomic write."""
    m = TEMP_NAME.match(name)
    if m is None:
        return False
    suffix = m.group("suffix") or ""
    # the writer keeps the target's suffix; a long target name may be cut short
    return not suffix or m.group("name").endswith(suffix) or len(m.group("name")) >= 180


def sweep_temp_files(folders: Iterable[Path], before: float | None = None) -> list[Path]:
    """Delete the atomic writers' temporary files in ``folders`` (not their subfolders).

    Parameters
    ----------
    folders : iterable of Path
        Folders to look in; missing ones are skipped.
    before : float, optional
        Only files last changed before this time (seconds since the epoch);
        default now.

    Returns
    -------
    list of Path
        The files deleted. Failures to delete are logged, not raised.
    """
    limit = time.time() if before is None else before
    removed: list[Path] = []
    for folder in folders:
        try:
            with os.scandir(folder) as it:
                entries = [
                    e for e in it if is_temp_name(e.name) and e.is_file(follow_symlinks=False)
                ]
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            _log.warning("cannot look for unfinished writes in %s: %s", folder, exc)
            continue
        for entry in entries:
            try:
                if entry.stat(follow_symlinks=False).st_mtime >= limit:
                    continue
                os.unlink(entry.path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                _log.warning("cannot delete the unfinished write %s: %s", entry.path, exc)
                continue
            removed.append(Path(entry.path))
    if removed:
        _log.info("removed %d temporary files of interrupted writes", len(removed))
    return removed
