"""The per-user list of recently opened project folders.

Kept in ``recent_projects.json`` in the per-user configuration folder
(``platformdirs.user_config_dir("segstudio")``, or ``$SEGSTUDIO_CONFIG_DIR``).
It is a convenience: an unreadable list is ignored and a failed write logged,
never raised.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Final

import platformdirs

from segstudio.core.atomic import atomic_write_text
from segstudio.io.project.leftovers import sweep_temp_files

__all__ = ["CONFIG_DIR_ENV", "MAX_RECENT_PROJECTS", "add_recent_project", "recent_projects"]

_log = logging.getLogger(__name__)

MAX_RECENT_PROJECTS: Final[int] = 10
"""How many folders :func:`recent_projects` remembers."""

CONFIG_DIR_ENV: Final[str] = "SEGSTUDIO_CONFIG_DIR"
"""Environment variable that overrides the per-user configuration folder."""

_RECENT_NAME = "recent_projects.json"
_RECENT_FORMAT = "segstudio.recent-projects"
_TEMP_AGE_S = 600.0


def _config_dir() -> Path:
    override = os.environ.get(CONFIG_DIR_ENV)
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_config_dir("segstudio", appauthor=False))


def _read_recent() -> list[str]:
    path = _config_dir() / _RECENT_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        _log.warning("%s: ignoring unreadable list of recent projects (%s)", path, exc)
        return []
    items = data.get("projects") if isinstance(data, dict) else None
    if not isinstance(items, list):
        _log.warning("%s: ignoring list of recent projects in an unknown layout", path)
        return []
    return [p for p in items if isinstance(p, str)]


def recent_projects() -> list[Path]:
    """Return the recently opened project folders, most recent first.

    Folders that no longer exist are left out. The list is kept in
    ``recent_projects.json`` in the per-user configuration folder
    (``platformdirs.user_config_dir("segstudio")``, or ``$SEGSTUDIO_CONFIG_DIR``).
    """
    return [Path(p) for p in _read_recent() if Path(p).is_dir()]


def add_recent_project(folder: str | os.PathLike[str]) -> None:
    """Put ``folder`` first in the list of recent projects (at most 10 are kept).

    Failing to write the list is logged, not raised: it is a convenience.
    """
    path = Path(folder).expanduser().resolve()
    kept = [p for p in _read_recent() if p != str(path) and Path(p).is_dir()]
    projects = [str(path), *kept][:MAX_RECENT_PROJECTS]
    config = _config_dir()
    text = json.dumps({"format": _RECENT_FORMAT, "version": 1, "projects": projects}, indent=2)
    try:
        config.mkdir(parents=True, exist_ok=True)
        atomic_write_text(config / _RECENT_NAME, text + "\n")
    except OSError as exc:
        _log.warning("cannot save the list of recent projects in %s: %s", config, exc)
    # Temp files of writes killed earlier; no lock guards this folder, so only old ones
    # (another SegStudio may be writing the list this very moment).
    sweep_temp_files([config], before=time.time() - _TEMP_AGE_S)
