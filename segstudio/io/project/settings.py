"""Project settings: ``.segstudio/settings.json``.

Settings are JSON values by key (the view, the brush, the active model, ...),
kept in memory and written whole, atomically, on every change. The file also
carries a copy of the label set for people and other tools to read; the
database holds the real one, and the copy is rewritten from it after every
change and on open when they differ. A damaged settings file is set aside
(never deleted) and a fresh one started.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from segstudio.core.atomic import atomic_write_text
from segstudio.core.errors import ProjectError
from segstudio.io.project.db import StoreChange, _ProjectCore

_log = logging.getLogger(__name__)

_SETTINGS_NAME = "settings.json"
_SETTINGS_FORMAT = "segstudio.project-settings"


class _SettingsMixin(_ProjectCore):
    """The settings methods of :class:`~segstudio.io.project.Project`."""

    def get_setting(self, key: str, default: Any = None) -> Any:
        """Return the project setting ``key``, or ``default`` when it is unset."""
        with self._lock:
            self._check_open()
            settings = self._settings["settings"]
            return _json_copy(settings[key]) if key in settings else default

    def set_setting(self, key: str, value: Any) -> None:
        """Set the project setting ``key`` to a JSON-safe ``value`` and save settings.json.

        Raises
        ------
        TypeError
            ``key`` is not a string or ``value`` cannot be written as JSON
            (NaN and infinity included).
        ProjectError
            settings.json cannot be written.
        """
        if not isinstance(key, str):
            raise TypeError(f"a setting key must be a string, got {type(key).__name__}")
        try:
            stored = json.loads(json.dumps(value, allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"setting {key!r}: the value is not JSON-safe ({exc})") from exc
        with self._lock:
            self._check_open()
            self._check_writable()
            self._settings["settings"][key] = stored
            self._write_settings()
        self.changed.emit(StoreChange(frozenset({"set_setting"}), settings=frozenset({key})))

    def _write_settings(self) -> None:
        """Write settings.json: the settings and a copy of the database's label set."""
        self._check_writable()
        with self._read() as db:
            ls = self._stored_labelset(db)
            self._settings["labelset"] = None if ls is None else ls.to_dict()
            try:
                atomic_write_text(self._settings_path, _settings_text(self._settings))
            except OSError as exc:
                raise ProjectError(
                    f"cannot write {self._settings_path} ({exc.strerror or exc})"
                ) from exc

    def _refresh_settings_copy(self) -> None:
        """Write settings.json after a committed change; the database already holds it."""
        try:
            self._write_settings()
        except ProjectError as exc:
            _log.warning("%s (it is refreshed when the project is next opened)", exc)


def _load_settings(path: Path, *, read_only: bool = False) -> dict[str, Any]:
    """Read settings.json; a damaged file is set aside (never deleted) and replaced.

    ``read_only`` leaves a damaged file where it is (and uses fresh settings).
    """
    fresh: dict[str, Any] = {"settings": {}, "labelset": None}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return fresh
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        data = exc
    if not isinstance(data, dict) or not isinstance(data.get("settings"), dict):
        if read_only:
            _log.warning("%s: unreadable project settings (%s); using defaults", path, data)
            return fresh
        aside = path.with_name(f"{path.name}.damaged-{int(time.time())}")
        _log.warning("%s: unreadable project settings (%s); moved to %s", path, data, aside)
        with contextlib.suppress(OSError):
            os.replace(path, aside)
        return fresh
    return {"settings": data["settings"], "labelset": data.get("labelset")}


def _settings_text(settings: dict[str, Any]) -> str:
    doc = {
        "format": _SETTINGS_FORMAT,
        "version": 1,
        "labelset": settings.get("labelset"),
        "settings": settings["settings"],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _json_copy(value: Any) -> Any:
    """A copy of a JSON value, so callers cannot change the stored settings in place."""
    if isinstance(value, dict | list):
        return json.loads(json.dumps(value))
    return value
