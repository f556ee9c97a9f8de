"""The SQLite layer of a project: ``project.sqlite``'s schema, connection and transactions.

The database is the one authority on a project's state (see
:mod:`segstudio.io.project.migration` for why). This module opens it (checking
its version and integrity, creating the schema on first use), turns SQLite
failures into :class:`~segstudio.core.errors.ProjectError` messages a user can
act on, and gives :class:`_ProjectCore`: the connection, its lock and the
read / write-transaction helpers every part of :class:`~segstudio.io.project.Project`
builds on.

Threads: one connection (``check_same_thread=False``) is shared by all threads
and guarded by one re-entrant lock; every public method holds the lock while it
works, including its file reads and writes, so each file change stays paired
with its database update. ``busy_timeout`` covers waits on other processes.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from psygnal import Signal

from segstudio.core.errors import LabelSetError, ProjectError
from segstudio.core.labelset import LabelSet, preset
from segstudio.io.project.records import ImageStatus, _Row

__all__ = ["SCHEMA_VERSION"]

_log = logging.getLogger(__name__)

SCHEMA_VERSION: Final[int] = 1
"""Version of the ``project.sqlite`` layout (stored as ``PRAGMA user_version``)."""

_DB_NAME = "project.sqlite"
_BUSY_TIMEOUT_MS = 5000

_SCHEMA: Final[str] = f"""
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE images (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    missing INTEGER NOT NULL DEFAULT 0 CHECK (missing IN (0, 1)),
    status TEXT NOT NULL DEFAULT 'unlabeled'
        CHECK (status IN ({", ".join(f"'{s.value}'" for s in ImageStatus)})),
    updated_at REAL,
    updated_by TEXT,
    label_file TEXT,
    pred_file TEXT,
    conf_file TEXT,
    pred_model TEXT,
    confidence REAL,
    added_at REAL NOT NULL
);
CREATE INDEX images_by_confidence ON images (confidence) WHERE pred_file IS NOT NULL;
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    image_id INTEGER REFERENCES images (id) ON DELETE CASCADE,
    action TEXT NOT NULL,
    user TEXT,
    time REAL NOT NULL,
    detail TEXT NOT NULL DEFAULT '{{}}'
);
CREATE INDEX events_by_image ON events (image_id, id);
"""


#: Actions after which any image may have changed (names are not listed).
_WHOLE_PROJECT: Final[frozenset[str]] = frozenset(
    {"scan", "set_labelset", "migrate_classes", "import_labels"}
)


@dataclass(frozen=True)
class StoreChange:
    """What one committed write changed, for those who keep a copy of the store.

    ``names`` are the images whose records changed; None means any image may
    have (a scan, an import, a class change). ``settings`` are the setting keys
    written. ``actions`` are the event-log actions of the write.
    """

    actions: frozenset[str]
    names: frozenset[str] | None = frozenset()
    settings: frozenset[str] = frozenset()


class _ProjectCore:
    """The open database of a project, the label set it stores, and the helpers
    every other part of :class:`~segstudio.io.project.Project` builds on.

    :class:`~segstudio.io.project.Project` sets the attributes below when it
    opens; the mixins of the other modules use them through this base.

    *Signal* ``changed(StoreChange)``: after every committed write, from the
    thread that wrote, outside the project's lock (a listener may read the
    project). A window keeps its copy of the records current with it.
    """

    changed = Signal(object)

    _folder: Path
    _state_dir: Path
    _labels_dir: Path
    _predictions_dir: Path
    _models_dir: Path
    _settings_path: Path
    _conn: sqlite3.Connection | None
    _read_only: bool
    _settings: dict[str, Any]
    _lock: threading.RLock
    _labelset_cache: tuple[str, LabelSet] | None
    #: the (action, image id) pairs the open transaction logged
    _pending: list[tuple[str, int | None]]

    # ---------------------------------------------------------------- label set

    @property
    def labelset(self) -> LabelSet | None:
        """The project's label set, or None until one is set."""
        with self._read() as db:
            return self._stored_labelset(db)

    @property
    def labelset_version(self) -> int:
        """The numbering generation of stored label maps; :meth:`migrate_classes` bumps it.

        Pass it to :meth:`save_labels` or :meth:`save_prediction` to refuse saving
        a map numbered for a label set that has since been migrated.
        """
        with self._read() as db:
            return _meta_version(db)

    def labelset_or_default(self) -> LabelSet:
        """Return :attr:`labelset`, or the ``camvid11`` preset when none is set."""
        ls = self.labelset
        return ls if ls is not None else preset("camvid11")

    # ---------------------------------------------------------------- internals

    def _check_open(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ProjectError(f"the project {self._folder} is closed")
        return self._conn

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock; turn database errors into ProjectError."""
        with self._lock:
            db = self._check_open()
            with _db_errors(self._state_dir / _DB_NAME):
                yield db

    def _check_writable(self) -> None:
        if self._read_only:
            raise ProjectError(
                f"{self._folder}: the project is open read-only here, so nothing can be "
                "changed; open it for writing (close the SegStudio that has it open first)"
            )

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock and a write transaction (BEGIN IMMEDIATE); commit on success."""
        change = None
        with self._lock:
            db = self._check_open()
            self._check_writable()
            with _db_errors(self._state_dir / _DB_NAME):
                db.execute("BEGIN IMMEDIATE")
                self._pending = []
                try:
                    yield db
                    change = self._change(db)
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
                finally:
                    self._pending = []
                db.execute("COMMIT")
        if change is not None:
            self.changed.emit(change)

    def _change(self, db: sqlite3.Connection) -> StoreChange | None:
        """What the open transaction's events say it changed (read before its commit)."""
        if not self._pending:
            return None
        actions = frozenset(action for action, _ in self._pending)
        if actions & _WHOLE_PROJECT:
            return StoreChange(actions, None)
        ids = sorted({i for _, i in self._pending if i is not None})
        names: set[str] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            rows = db.execute(f"SELECT name FROM images WHERE id IN ({marks})", chunk)
            names.update(str(r[0]) for r in rows)
        return StoreChange(actions, frozenset(names))

    def _row(self, db: sqlite3.Connection, name: str) -> _Row:
        row = db.execute(
            "SELECT id, name, status, label_file, pred_file, conf_file FROM images WHERE name = ?",
            (name,),
        ).fetchone()
        if row is None:
            raise self._unknown(name)
        return _Row(row[0], row[1], ImageStatus(row[2]), row[3], row[4], row[5])

    def _unknown(self, name: object) -> ProjectError:
        return ProjectError(
            f"the project {self._folder} has no image {name!r} "
            "(scan the folder if the file was added recently)"
        )

    def _check_version(self, db: sqlite3.Connection, expected: int | None, name: str) -> int:
        version = _meta_version(db)
        if expected is not None and expected != version:
            raise ProjectError(
                f"{name}: the map was made for label-set version {expected}, but the project's "
                f"classes have since been migrated (version {version}); reload the image"
            )
        return version

    def _stored_labelset(self, db: sqlite3.Connection) -> LabelSet | None:
        row = db.execute("SELECT value FROM meta WHERE key = 'labelset'").fetchone()
        if row is None:
            return None
        text = row[0]
        if self._labelset_cache is None or self._labelset_cache[0] != text:
            try:
                self._labelset_cache = (text, LabelSet.from_json(text))
            except LabelSetError as exc:
                raise ProjectError(f"the project's stored label set is damaged: {exc}") from exc
        return self._labelset_cache[1]

    def _event(
        self,
        db: sqlite3.Connection,
        image_id: int | None,
        action: str,
        user: str,
        when: float,
        detail: dict[str, Any],
    ) -> None:
        db.execute(
            "INSERT INTO events (image_id, action, user, time, detail) VALUES (?, ?, ?, ?, ?)",
            (image_id, action, user, when, json.dumps(detail)),
        )
        self._pending.append((action, image_id))


def _connect(path: Path, *, create: bool, read_only: bool = False) -> sqlite3.Connection:
    """Open (or create) project.sqlite, check its version, create or check the schema.

    ``read_only`` never writes: no journal-mode change, no schema, and SQLite's
    ``query_only`` refuses any write on the connection.
    """
    if not path.exists() and (not create or read_only):
        raise ProjectError(f"{path}: the project database is missing")
    try:
        conn = sqlite3.connect(
            path,
            timeout=_BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,  # explicit BEGIN / COMMIT
            check_same_thread=False,  # shared between threads under Project._lock
        )
    except sqlite3.Error as exc:
        raise ProjectError(f"{path}: cannot open the project database ({exc})") from exc
    try:
        with _db_errors(path):
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            (version,) = conn.execute("PRAGMA user_version").fetchone()
            if version > SCHEMA_VERSION:
                raise ProjectError(
                    f"{path}: this project was saved by a newer SegStudio (database version "
                    f"{version}; this one reads up to {SCHEMA_VERSION}); "
                    "update SegStudio to open it"
                )
            if read_only:
                conn.execute("PRAGMA query_only = ON")
            else:
                (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
                if str(mode).lower() != "wal":
                    _log.warning("%s: WAL journal not available (using %s)", path, mode)
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = FULL")
            (check,) = conn.execute("PRAGMA quick_check").fetchone()
            if check != "ok":
                raise ProjectError(
                    f"{path}: the project database is corrupt ({check}); your images and "
                    "label files are untouched; restore the database from a backup"
                )
            if version == 0 and read_only:
                raise ProjectError(f"{path}: the project database is not set up yet")
            if version == 0:
                _create_schema(conn, path)
            else:
                tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
                if not {"meta", "images", "events"} <= tables:
                    raise ProjectError(f"{path}: the project database lacks SegStudio's tables")
    except BaseException:
        conn.close()
        raise
    return conn


def _create_schema(conn: sqlite3.Connection, path: Path) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        (count,) = conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        if version == SCHEMA_VERSION:  # another process created it meanwhile
            conn.execute("COMMIT")
            return
        if count:
            raise ProjectError(f"{path}: not a SegStudio project database (it holds other tables)")
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        _set_meta(conn, "labelset_version", "0")
        _set_meta(conn, "created_at", repr(time.time()))
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@contextlib.contextmanager
def _db_errors(path: Path) -> Iterator[None]:
    """Turn SQLite failures into ProjectError with a message a user can act on."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        text = str(exc)
        if "locked" in text or "busy" in text:
            raise ProjectError(
                f"{path}: the project is busy (another SegStudio may be changing it); "
                "try again in a moment"
            ) from exc
        if "readonly" in text or "read-only" in text:
            raise ProjectError(f"{path}: the project database is read-only") from exc
        raise ProjectError(f"{path}: project database error ({text})") from exc
    except sqlite3.DatabaseError as exc:
        # "file is not a database", "database disk image is malformed", ...
        raise ProjectError(
            f"{path}: the project database is corrupt or not a database ({exc}); your images "
            "and label files are untouched; restore the database from a backup"
        ) from exc


def _set_meta(db: sqlite3.Connection, key: str, value: str) -> None:
    db.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def _meta_version(db: sqlite3.Connection) -> int:
    row = db.execute("SELECT value FROM meta WHERE key = 'labelset_version'").fetchone()
    return 0 if row is None else int(row[0])


def _current_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):  # no login name (some containers)
        return "unknown"
