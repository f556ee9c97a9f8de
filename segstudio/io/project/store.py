"""The project store: a folder of images and its ``.segstudio`` state folder.

A folder of images is a project. Everything SegStudio keeps about it lives in
``FOLDER/.segstudio/``::

    project.sqlite      the index: one row per image (status, who changed it and
                        when, which label / prediction files belong to it, mean
                        prediction confidence), an event log, and the label set
                        (see :mod:`segstudio.io.project.db`)
    settings.json       project settings, plus a copy of the label set for people
                        and other tools to read (:mod:`segstudio.io.project.settings`)
    lock                held by the one process that has the project open for
                        writing, and says which (:mod:`segstudio.io.project.lock`)
    labels/             human label maps, ``<image name>.v<N>.png``; ``aside/`` keeps
                        labels taken out of use (the image changed size), never
                        deleted (:mod:`segstudio.io.project.files`)
    predictions/        model label maps ``<image name>.v<N>.png`` and their
                        per-pixel confidence ``<image name>.conf.png``
                        (:mod:`segstudio.io.project.files`)
    models/             model files made by fine-tuning (the model registry:
                        :meth:`Project.models`; the active model is a stored
                        choice, see :mod:`segstudio.io.project.models`)

Label maps are ``uint8`` H x W PNGs holding class ids ``0..N-1`` and 255 for
unlabeled pixels (see :mod:`segstudio.core.labelset`). Renumbering them when
classes are removed, merged or reordered is all or nothing across a crash:
see :mod:`segstudio.io.project.migration`.

:class:`Project` is put together from one mixin per job (settings, label
files, migration, models, over the database core); this module holds what
opening, scanning and querying a project need.

Processes
---------
One process at a time has a project open for writing (the lock above); others
may open it read-only (``Project.open(folder, read_only=True)``), which never
writes. So no other process can migrate the classes under an open window.

Threads
-------
One SQLite connection (``check_same_thread=False``) is shared by all threads and
guarded by one re-entrant lock; every public method holds the lock while it
works, including its file reads and writes, so a label save from the GUI thread
and a prediction save from a worker thread are serialised and each file change
stays paired with its database update. ``busy_timeout`` covers waits on other
processes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

from segstudio.core.errors import ImageReadError, ProjectError
from segstudio.io.images import list_images, natural_key
from segstudio.io.project import lock as write_lock
from segstudio.io.project.aside import ASIDE_DIR_NAME
from segstudio.io.project.db import _DB_NAME, _connect, _current_user
from segstudio.io.project.leftovers import sweep_temp_files
from segstudio.io.project.migration import _MigrationMixin
from segstudio.io.project.models import _ModelsMixin
from segstudio.io.project.records import (
    _DEFAULT_LEAST_CONFIDENT,
    _RECORD_COLUMNS,
    ImageRecord,
    ImageStatus,
    _record,
)
from segstudio.io.project.settings import _SETTINGS_NAME, _load_settings

__all__ = ["STATE_DIR_NAME", "Project"]

_log = logging.getLogger(__name__)

STATE_DIR_NAME: Final[str] = ".segstudio"
"""Name of the state folder inside a project folder."""


class Project(_MigrationMixin, _ModelsMixin):
    """An open project: a folder of images and its ``.segstudio`` state.

    Create one with :meth:`open`; close it with :meth:`close` or use it as a
    context manager. Every public method may be called from any thread (see the
    module docstring).
    """

    def __init__(
        self,
        folder: Path,
        conn: sqlite3.Connection,
        settings: dict[str, Any],
        *,
        read_only: bool = False,
    ) -> None:
        # Private: use Project.open().
        self._folder = folder
        self._state_dir = folder / STATE_DIR_NAME
        self._read_only = read_only
        self._locked = False  # holds a share of the write lock (see lock.py)
        self._labels_dir = self._state_dir / "labels"
        self._predictions_dir = self._state_dir / "predictions"
        self._models_dir = self._state_dir / "models"
        self._settings_path = self._state_dir / _SETTINGS_NAME
        self._conn = conn
        self._settings = settings
        self._lock = threading.RLock()
        self._labelset_cache = None
        self._pending = []

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(
        cls, folder: str | os.PathLike[str], *, create: bool = True, read_only: bool = False
    ) -> Project:
        """Open the project of ``folder``, creating its ``.segstudio`` state if needed.

        A project is open for writing in one process at a time: opening takes
        the lock ``.segstudio/lock`` (shared by every handle of this process, see
        :mod:`segstudio.io.project.lock`), and a second process is refused with
        :class:`~segstudio.io.project.lock.ProjectLockedError`, which names the
        holder. ``read_only=True`` takes no lock and never writes: for commands
        that only read (export, training data), also while a window edits.

        Opening for writing also finishes what a crash interrupted: orphaned
        label and prediction files are removed (or adopted, see the module
        docstring), temporary files of killed writes are deleted (see
        :mod:`segstudio.io.project.leftovers`), and ``settings.json`` is brought
        in line with the database. It does not scan the folder; call :meth:`scan`
        for that.

        Parameters
        ----------
        folder : str or os.PathLike
            The folder of images.
        create : bool, default True
            Create ``.segstudio/`` when the folder has none. With False, a folder
            that is not yet a project is refused.
        read_only : bool, default False
            Open without the write lock; every method that would change the
            project raises :class:`~segstudio.core.errors.ProjectError`. A folder
            that is not yet a project is refused.

        Returns
        -------
        Project

        Raises
        ------
        ProjectError
            The folder is missing, is a file, or cannot be written; it is not a
            project and ``create`` is False (or ``read_only`` True); the database
            is corrupt, not a SegStudio database, written by a newer SegStudio, or
            busy; another process has it open for writing
            (:class:`~segstudio.io.project.lock.ProjectLockedError`).
        """
        root = Path(folder).expanduser()
        try:
            root = root.resolve()
        except OSError as exc:
            raise ProjectError(
                f"{root}: cannot resolve the folder ({exc.strerror or exc})"
            ) from exc
        if not root.exists():
            raise ProjectError(f"{root}: no such folder")
        if not root.is_dir():
            raise ProjectError(f"{root}: is a file, not a folder of images")
        state = root / STATE_DIR_NAME
        if read_only:
            return cls._open_read_only(root, state)
        opened_at = time.time()
        _prepare_state_dir(root, state, create=create)
        first = write_lock.acquire(state)  # raises ProjectLockedError when another process has it
        conn = None
        try:
            conn = _connect(state / _DB_NAME, create=create)
            settings = _load_settings(state / _SETTINGS_NAME)
            project = cls(root, conn, settings)
            project._locked = True
            if first:  # no other writer anywhere: whatever a writer left is a leftover
                sweep_temp_files(project._written_dirs(), before=opened_at)
            project._recover()
            # --- hook for segstudio.io.datasets.staging: undo (or finish) a dataset import
            # a kill cut short, so the window never shows its images without their labels
            if first and (state / "import-staging").is_dir():
                from segstudio.io.datasets.staging import sweep_import_staging

                sweep_import_staging(project)
            # --- end of hook ---
        except BaseException:
            if conn is not None:
                conn.close()
            write_lock.release(state)
            raise
        _log.info("opened project %s", root)
        return project

    @classmethod
    def _open_read_only(cls, root: Path, state: Path) -> Project:
        if not state.is_dir():
            raise ProjectError(
                f"{root}: not a SegStudio project (it has no {STATE_DIR_NAME} folder)"
            )
        conn = _connect(state / _DB_NAME, create=False, read_only=True)
        try:
            settings = _load_settings(state / _SETTINGS_NAME, read_only=True)
        except BaseException:
            conn.close()
            raise
        _log.info("opened project %s read-only", root)
        return cls(root, conn, settings, read_only=True)

    def close(self) -> None:
        """Close the database and give back the write lock. Calling it again does nothing."""
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.close()
                self._conn = None
            if self._locked:
                self._locked = False
                write_lock.release(self._state_dir)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else "read-only" if self._read_only else "open"
        return f"<Project {str(self._folder)!r} ({state})>"

    @property
    def read_only(self) -> bool:
        """Whether this handle was opened read-only (no lock; changes are refused)."""
        return self._read_only

    # ---------------------------------------------------------------- locations

    @property
    def folder(self) -> Path:
        """The folder of images (absolute)."""
        return self._folder

    @property
    def state_dir(self) -> Path:
        """The ``.segstudio`` folder inside :attr:`folder`."""
        return self._state_dir

    @property
    def models_dir(self) -> Path:
        """The folder for this project's model files (``.segstudio/models``)."""
        return self._models_dir

    def image_path(self, name: str) -> Path:
        """Return the path of the image called ``name``.

        Raises
        ------
        ProjectError
            The project has no image of that name.
        """
        with self._read() as db:
            self._row(db, name)
        return self._folder / name

    # --------------------------------------------------------------------- scan

    def scan(self) -> int:
        """Bring the index in line with the image files in the folder.

        New images are added as :attr:`ImageStatus.UNLABELED`; images whose file
        has gone are kept (with their labels and history) but flagged missing,
        and left out of :meth:`images` until they come back. Image contents are
        not read.

        Returns
        -------
        int
            The number of images present in the folder.

        Raises
        ------
        ProjectError
            The folder cannot be listed any more.
        """
        try:
            present = [p.name for p in list_images(self._folder)]
        except ImageReadError as exc:
            raise ProjectError(f"cannot list the project folder: {exc}") from exc
        now = time.time()
        with self._transaction() as db:
            known = {
                name: bool(missing)
                for name, missing in db.execute("SELECT name, missing FROM images")
            }
            present_set = set(present)
            added = [(name, now) for name in present if name not in known]
            back = [(name,) for name in present if known.get(name) is True]
            gone = [
                (name,)
                for name, missing in known.items()
                if not missing and name not in present_set
            ]
            if added:
                db.executemany("INSERT INTO images (name, added_at) VALUES (?, ?)", added)
            if back:
                db.executemany("UPDATE images SET missing = 0 WHERE name = ?", back)
            if gone:
                db.executemany("UPDATE images SET missing = 1 WHERE name = ?", gone)
            if added or back or gone:
                detail = {"added": len(added), "returned": len(back), "missing": len(gone)}
                self._event(db, None, "scan", _current_user(), now, detail)
        if added or back or gone:
            _log.info(
                "scan of %s: %d images, %d new, %d back, %d missing",
                self._folder,
                len(present),
                len(added),
                len(back),
                len(gone),
            )
        return len(present)

    # ------------------------------------------------------------------ queries

    def images(self, status: ImageStatus | None = None) -> list[ImageRecord]:
        """Return the images present in the folder, in natural order of name.

        Parameters
        ----------
        status : ImageStatus, optional
            Only images with this status.

        Returns
        -------
        list of ImageRecord
            ``img2.png`` comes before ``img10.png``. Images flagged missing by
            :meth:`scan` are left out.
        """
        sql = f"SELECT {_RECORD_COLUMNS} FROM images WHERE missing = 0"
        args: tuple[str, ...] = ()
        if status is not None:
            sql += " AND status = ?"
            args = (ImageStatus(status).value,)
        with self._read() as db:
            rows = db.execute(sql, args).fetchall()
        records = [_record(r) for r in rows]
        records.sort(key=lambda r: natural_key(r.name))
        return records

    def record(self, name: str) -> ImageRecord:
        """Return the record of the image called ``name`` (also if flagged missing).

        Raises
        ------
        ProjectError
            The project has no image of that name.
        """
        with self._read() as db:
            row = db.execute(
                f"SELECT {_RECORD_COLUMNS} FROM images WHERE name = ?", (name,)
            ).fetchone()
        if row is None:
            raise self._unknown(name)
        return _record(row)

    def least_confident(
        self, status_in: Iterable[ImageStatus] = _DEFAULT_LEAST_CONFIDENT
    ) -> str | None:
        """Return the predicted image with the lowest mean confidence.

        Parameters
        ----------
        status_in : iterable of ImageStatus, default (PREDICTED, UNLABELED, IN_PROGRESS)
            Only images with one of these statuses are considered.

        Returns
        -------
        str or None
            The image's name, or None when no image present in the folder with
            one of those statuses has a prediction.
        """
        statuses = sorted({ImageStatus(s).value for s in status_in})
        if not statuses:
            return None
        marks = ", ".join("?" * len(statuses))
        with self._read() as db:
            row = db.execute(
                "SELECT name FROM images WHERE missing = 0 AND pred_file IS NOT NULL "
                f"AND confidence IS NOT NULL AND status IN ({marks}) "
                "ORDER BY confidence, name LIMIT 1",
                statuses,
            ).fetchone()
        return None if row is None else str(row[0])

    def history(self, name: str) -> list[dict[str, Any]]:
        """Return the events of the image called ``name``, oldest first.

        Returns
        -------
        list of dict
            Each with ``action`` (``"save_labels"``, ``"save_prediction"``,
            ``"set_status"``, ``"migrate_classes"``, ``"recovered_labels"``,
            ``"import_labels"``, ``"labels_set_aside"``, ``"labels_kept_aside"``:
            ``detail["file"]`` names the kept file under ``.segstudio/labels/``),
            ``user``, ``time`` (seconds since the epoch) and ``detail`` (a dict).

        Raises
        ------
        ProjectError
            The project has no image of that name.
        """
        with self._read() as db:
            row = self._row(db, name)
            events = db.execute(
                "SELECT action, user, time, detail FROM events WHERE image_id = ? ORDER BY id",
                (row.id,),
            ).fetchall()
        return [
            {"action": a, "user": u, "time": t, "detail": json.loads(d)} for a, u, t, d in events
        ]

    # ------------------------------------------------------------------- status

    def set_status(self, name: str, status: ImageStatus, *, user: str | None = None) -> None:
        """Set the status of image ``name`` (a person's decision, so any status goes).

        Raises
        ------
        ValueError
            ``status`` is not an :class:`ImageStatus` value.
        ProjectError
            The project has no image of that name.
        """
        new = ImageStatus(status)
        who = user or _current_user()
        with self._transaction() as db:
            row = self._row(db, name)
            now = time.time()
            db.execute(
                "UPDATE images SET status = ?, updated_at = ?, updated_by = ? WHERE id = ?",
                (new.value, now, who, row.id),
            )
            detail = {"from": row.status.value, "to": new.value}
            self._event(db, row.id, "set_status", who, now, detail)

    # ---------------------------------------------------------------- internals

    def _written_dirs(self) -> list[Path]:
        """The folders the store's atomic writers write to."""
        return [
            self._state_dir,
            self._labels_dir,
            self._labels_dir / ASIDE_DIR_NAME,
            self._predictions_dir,
            self._models_dir,
        ]

    def _recover(self) -> None:
        """Finish what a crash left: adopt or delete orphan files, refresh settings.json."""
        try:
            self._sweep_orphans()
        except ProjectError as exc:
            # Most likely another SegStudio holds the write lock; the next open sweeps.
            _log.warning("%s: skipped the clean-up of unfinished work: %s", self._folder, exc)
        with self._read() as db:
            ls = self._stored_labelset(db)
        copy = None if ls is None else ls.to_dict()
        if self._settings.get("labelset") != copy or not self._settings_path.exists():
            self._write_settings()


def _prepare_state_dir(root: Path, state: Path, *, create: bool) -> None:
    if state.exists() and not state.is_dir():
        raise ProjectError(f"{state}: is a file; SegStudio needs a folder of that name")
    if not state.exists():
        if not create:
            raise ProjectError(
                f"{root}: not a SegStudio project (it has no {STATE_DIR_NAME} folder)"
            )
        if not os.access(root, os.W_OK | os.X_OK):
            raise ProjectError(
                f"{root}: the folder is not writable, so SegStudio cannot keep its project "
                f"state ({STATE_DIR_NAME}) there; choose a folder you can write to"
            )
    try:
        for sub in (state, state / "labels", state / "predictions", state / "models"):
            sub.mkdir(exist_ok=True)
    except PermissionError as exc:
        raise ProjectError(
            f"{root}: permission denied creating {exc.filename}; choose a folder you can write to"
        ) from exc
    except OSError as exc:
        raise ProjectError(
            f"{root}: cannot create the project state folder {state} ({exc.strerror or exc})"
        ) from exc
    if not os.access(state, os.W_OK | os.X_OK):
        raise ProjectError(f"{state}: the project state folder is not writable")
