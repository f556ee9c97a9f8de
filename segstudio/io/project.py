"""The project store: a folder of images and its ``.segstudio`` state folder.

A folder of images is a project. Everything SegStudio keeps about it lives in
``FOLDER/.segstudio/``::

    project.sqlite      the index: one row per image (status, who changed it and
                        when, which label / prediction files belong to it, mean
                        prediction confidence), an event log, and the label set
    settings.json       project settings, plus a copy of the label set for people
                        and other tools to read
    labels/             human label maps, ``<image name>.v<N>.png``
    predictions/        model label maps ``<image name>.v<N>.png`` and their
                        per-pixel confidence ``<image name>.conf.png``
    models/             model files made by fine-tuning (the model registry:
                        :meth:`Project.models`; the active model is a stored
                        choice, see :mod:`segstudio.io.model_registry`)

Label maps are ``uint8`` H x W PNGs holding class ids ``0..N-1`` and 255 for
unlabeled pixels (see :mod:`segstudio.core.labelset`).

Crash safety of class migration
-------------------------------
:meth:`Project.migrate_classes` renumbers every stored label map. A crash (kill
-9, power cut) part-way must never leave files in old and new numbering that
cannot be told apart. The design:

- The database is the one authority. ``meta.labelset_version`` is an integer N
  and ``meta.labelset`` the label set JSON; every image row names its label and
  prediction files, and those file names carry the numbering they are in
  (``.v<N>.png``). Invariant: after every committed transaction, every file a row
  names is in numbering N and N belongs to the stored label set.
- A migration from N to N + 1 writes each remapped file atomically under a *new*
  name (``.v<N+1>.png``), leaving the old file untouched. Only when all are
  written does ONE transaction point every row at its new file, store
  N + 1 and the new label set, and log the events. SQLite's commit is the single
  switch from fully-old to fully-new. Then ``settings.json`` is refreshed and the
  old files are deleted.
- On open, files in ``labels/`` and ``predictions/`` that no row names are
  orphans of an unfinished step and are deleted, except a label file in the
  current numbering for an image that has none recorded: that is a human save
  whose database update did not happen, and it is adopted rather than lost.
  ``settings.json``'s label-set copy is rewritten from the database when they
  differ.
- Every file a row is about to name is written, and every orphan deleted,
  inside a write transaction (``BEGIN IMMEDIATE``) of ``project.sqlite``. The
  database's own lock therefore also serialises file changes between processes:
  the orphan sweep of a second SegStudio opening the same folder waits until a
  migration has committed or died, and never deletes files another process is
  about to record. Only files that no row can name any more (the old numbering
  after a commit) are deleted outside it. ``synchronous=FULL`` makes each commit
  durable before old files go.
- Label and prediction saves overwrite their file atomically under the same
  name (same numbering), then update the row; a crash in between leaves the new
  file with slightly stale metadata, never a mixed numbering. A prediction's
  labels and confidence are two files, so such a crash may pair a new label map
  with the previous confidence map; both are valid, and predictions are redone
  anyway.

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
import enum
import getpass
import hashlib
import json
import logging
import math
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

import cv2
import numpy as np
import platformdirs

from segstudio.core.atomic import atomic_write_bytes, atomic_write_text
from segstudio.core.errors import (
    ImageNotFoundError,
    ImageReadError,
    LabelSetError,
    ProjectError,
)
from segstudio.core.labelset import UNLABELED, LabelSet, preset
from segstudio.io.images import (
    encode_label_map,
    list_images,
    natural_key,
    read_label_map,
    write_label_map,
)
from segstudio.io.model_registry import (
    ACTIVE_MODEL_SETTING,
    ModelChoice,
    ModelKind,
    ModelSummary,
    list_models,
)

__all__ = [
    "MAX_RECENT_PROJECTS",
    "SCHEMA_VERSION",
    "STATE_DIR_NAME",
    "ImageRecord",
    "ImageStatus",
    "Project",
    "add_recent_project",
    "recent_projects",
]

_log = logging.getLogger(__name__)

STATE_DIR_NAME: Final[str] = ".segstudio"
"""Name of the state folder inside a project folder."""

SCHEMA_VERSION: Final[int] = 1
"""Version of the ``project.sqlite`` layout (stored as ``PRAGMA user_version``)."""

MAX_RECENT_PROJECTS: Final[int] = 10
"""How many folders :func:`recent_projects` remembers."""

CONFIG_DIR_ENV: Final[str] = "SEGSTUDIO_CONFIG_DIR"
"""Environment variable that overrides the per-user configuration folder."""

_DB_NAME = "project.sqlite"
_SETTINGS_NAME = "settings.json"
_SETTINGS_FORMAT = "segstudio.project-settings"
_RECENT_NAME = "recent_projects.json"
_RECENT_FORMAT = "segstudio.recent-projects"
_BUSY_TIMEOUT_MS = 5000
# File names under labels/ and predictions/ are "<base>.v<N>.png"; keep them well
# below the usual 255-byte limit of a file name.
_MAX_BASE_BYTES = 200


class ImageStatus(enum.StrEnum):
    """Where an image stands in the labelling loop."""

    UNLABELED = "unlabeled"
    """Nobody has labelled it and no model has predicted it."""
    PREDICTED = "predicted"
    """Only a model prediction exists."""
    IN_PROGRESS = "in_progress"
    """A person has saved labels for it."""
    REVIEWED = "reviewed"
    """A person has confirmed its labels as finished."""


_DEFAULT_LEAST_CONFIDENT: Final[tuple[ImageStatus, ...]] = (
    ImageStatus.PREDICTED,
    ImageStatus.UNLABELED,
    ImageStatus.IN_PROGRESS,
)


@dataclass(frozen=True)
class ImageRecord:
    """What the project knows about one image.

    Attributes
    ----------
    name : str
        File name of the image, relative to the project folder.
    status : ImageStatus
        Where it stands in the labelling loop.
    updated_at : float or None
        When a person last saved labels or set the status (seconds since the
        epoch), None if never.
    updated_by : str or None
        Who that was.
    confidence : float or None
        Mean confidence (0..1) of its stored prediction, None without one.
    has_labels : bool
        Whether human labels are stored.
    has_prediction : bool
        Whether a model prediction is stored.
    """

    name: str
    status: ImageStatus
    updated_at: float | None
    updated_by: str | None
    confidence: float | None
    has_labels: bool
    has_prediction: bool


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

_RECORD_COLUMNS = (
    "name, status, updated_at, updated_by, confidence, "
    "label_file IS NOT NULL, pred_file IS NOT NULL"
)


@dataclass(frozen=True)
class _Row:
    """The columns of an image row that the write paths need."""

    id: int
    name: str
    status: ImageStatus
    label_file: str | None
    pred_file: str | None
    conf_file: str | None


class Project:
    """An open project: a folder of images and its ``.segstudio`` state.

    Create one with :meth:`open`; close it with :meth:`close` or use it as a
    context manager. Every public method may be called from any thread (see the
    module docstring).
    """

    def __init__(self, folder: Path, conn: sqlite3.Connection, settings: dict[str, Any]) -> None:
        # Private: use Project.open().
        self._folder = folder
        self._state_dir = folder / STATE_DIR_NAME
        self._labels_dir = self._state_dir / "labels"
        self._predictions_dir = self._state_dir / "predictions"
        self._models_dir = self._state_dir / "models"
        self._settings_path = self._state_dir / _SETTINGS_NAME
        self._conn: sqlite3.Connection | None = conn
        self._settings = settings
        self._lock = threading.RLock()
        self._labelset_cache: tuple[str, LabelSet] | None = None

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(cls, folder: str | os.PathLike[str], *, create: bool = True) -> Project:
        """Open the project of ``folder``, creating its ``.segstudio`` state if needed.

        Opening also finishes what a crash interrupted: orphaned label and
        prediction files are removed (or adopted, see the module docstring) and
        ``settings.json`` is brought in line with the database. It does not scan
        the folder; call :meth:`scan` for that.

        Parameters
        ----------
        folder : str or os.PathLike
            The folder of images.
        create : bool, default True
            Create ``.segstudio/`` when the folder has none. With False, a folder
            that is not yet a project is refused.

        Returns
        -------
        Project

        Raises
        ------
        ProjectError
            The folder is missing, is a file, or cannot be written; it is not a
            project and ``create`` is False; the database is corrupt, not a
            SegStudio database, written by a newer SegStudio, or busy.
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
        _prepare_state_dir(root, state, create=create)
        conn = _connect(state / _DB_NAME, create=create)
        try:
            settings = _load_settings(state / _SETTINGS_NAME)
            project = cls(root, conn, settings)
            project._recover()
        except BaseException:
            conn.close()
            raise
        _log.info("opened project %s", root)
        return project

    def close(self) -> None:
        """Close the database. Calling it again does nothing."""
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.close()
                self._conn = None

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
        state = "closed" if self._conn is None else "open"
        return f"<Project {str(self._folder)!r} ({state})>"

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
            ``"set_status"``, ``"migrate_classes"``, ``"recovered_labels"``),
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

    def set_labelset(self, ls: LabelSet, *, user: str | None = None) -> None:
        """Store ``ls`` as the project's label set without renumbering anything.

        Use it to choose the first label set, rename or recolour classes, or add
        classes at the end. Removing, merging or reordering classes changes what
        the stored numbers mean: use :meth:`migrate_classes` for that.

        Raises
        ------
        ProjectError
            ``ls`` has fewer classes than the current label set while label maps
            are stored (their higher ids would lose their meaning).
        """
        if not isinstance(ls, LabelSet):
            raise TypeError(f"set_labelset needs a LabelSet, got {type(ls).__name__}")
        who = user or _current_user()
        with self._transaction() as db:
            old = self._stored_labelset(db)
            if old is not None and ls.num_classes < old.num_classes:
                (stored,) = db.execute(
                    "SELECT COUNT(*) FROM images WHERE label_file IS NOT NULL "
                    "OR pred_file IS NOT NULL"
                ).fetchone()
                if stored:
                    raise ProjectError(
                        f"the new label set has {ls.num_classes} classes, the current one "
                        f"{old.num_classes}, and {stored} images have stored label maps; "
                        "remove or merge classes with migrate_classes so the maps are renumbered"
                    )
            _set_meta(db, "labelset", ls.to_json())
            self._event(db, None, "set_labelset", who, time.time(), {"name": ls.name})
        self._refresh_settings_copy()

    def migrate_classes(
        self, lut: np.ndarray, new_labelset: LabelSet, *, user: str | None = None
    ) -> int:
        """Renumber every stored label map through ``lut`` and store ``new_labelset``.

        Human labels and model predictions are remapped; confidence maps are
        kept. The change is all or nothing, also across a crash: see the module
        docstring. A stored file that was deleted by hand is dropped from the
        index with a warning.

        Parameters
        ----------
        lut : numpy.ndarray
            256 ``uint8`` entries: old id ``i`` becomes ``lut[i]``. Every id of the
            old label set must map to an id of ``new_labelset`` or to 255.
        new_labelset : LabelSet
            The label set the remapped maps are numbered for.
        user : str, optional
            Who did it (default: the logged-in user).

        Returns
        -------
        int
            The number of label and prediction files remapped.

        Raises
        ------
        ValueError
            ``lut`` is not 256 ``uint8`` values, or maps an old class outside the
            new label set.
        ProjectError
            A stored file cannot be read or the new ones cannot be written; the
            project is left as it was.
        """
        table = _check_lut(lut)
        if not isinstance(new_labelset, LabelSet):
            raise TypeError(f"migrate_classes needs a LabelSet, got {type(new_labelset).__name__}")
        who = user or _current_user()
        written: list[Path] = []
        old_files: list[Path] = []
        with self._lock:
            # Leftovers of a sweep skipped at open must not be mistaken for new files.
            self._sweep_orphans()
            with self._transaction() as db:
                try:
                    new_version, count = self._remap_all(
                        db, table, new_labelset, who, written, old_files
                    )
                except BaseException:
                    # Not committed: the rows still name the old files. Remove the new
                    # ones while the write lock keeps other processes from these names.
                    _discard(written)
                    raise
            # Committed: the new numbering is the project's. What follows only tidies.
            self._refresh_settings_copy()
            _discard(old_files)
        _log.info(
            "migrated %d label files of %s to label set %r (version %d)",
            count,
            self._folder,
            new_labelset.name,
            new_version,
        )
        return count

    # ----------------------------------------------------------------- settings

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
            self._settings["settings"][key] = stored
            self._write_settings()

    # ------------------------------------------------------------------- models

    def models(self) -> list[ModelSummary]:
        """The project's model files (``.segstudio/models``), oldest first.

        Each is summarised from its header (architecture, classes, lineage,
        metrics) without reading weights; see :mod:`segstudio.io.model_registry`.
        """
        return list_models(self._models_dir)

    def model_choice(self) -> ModelChoice | None:
        """The stored choice of active model, whether or not its file still exists.

        None when no model was ever chosen for this project.
        """
        return ModelChoice.from_setting(self.get_setting(ACTIVE_MODEL_SETTING), self._models_dir)

    def active_model(self) -> Path | None:
        """The active model's file.

        None when no model is chosen, and also when the chosen file has gone:
        :meth:`model_choice` then still names it, so the caller can say what is
        missing. There is never a fallback to another model.
        """
        choice = self.model_choice()
        return None if choice is None else choice.resolve(self._models_dir)

    def set_active_model(
        self, path: str | os.PathLike[str] | None, *, bundled: bool = False
    ) -> ModelChoice | None:
        """Store the model this project uses; the stored choice is returned.

        Parameters
        ----------
        path : str, os.PathLike or None
            The model file. One in :attr:`models_dir` is stored relative to it
            (a moved project keeps it), the bundled model's file as the bundled
            model, any other file by its absolute path. None clears the choice.
        bundled : bool, default False
            Choose the bundled model (``path`` is then ignored).

        Raises
        ------
        ProjectError
            settings.json cannot be written.
        """
        if bundled:
            choice: ModelChoice | None = ModelChoice(ModelKind.BUNDLED)
        elif path is None:
            choice = None
        else:
            choice = ModelChoice.for_path(Path(path), self._models_dir)
        self.set_setting(ACTIVE_MODEL_SETTING, None if choice is None else choice.to_setting())
        return choice

    # ------------------------------------------------------------------- labels

    def load_labels(self, name: str) -> np.ndarray | None:
        """Return the stored human labels of image ``name``, or None if there are none.

        Returns
        -------
        numpy.ndarray or None
            ``H x W`` ``uint8``.

        Raises
        ------
        ProjectError
            The project has no image of that name.
        ImageReadError
            The stored file is missing or damaged (the message names it).
        """
        with self._read() as db:
            row = self._row(db, name)
            if row.label_file is None:
                return None
            return read_label_map(self._labels_dir / row.label_file)

    def save_labels(
        self,
        name: str,
        labels: np.ndarray,
        *,
        user: str | None = None,
        labelset_version: int | None = None,
    ) -> None:
        """Store human labels for image ``name``.

        The PNG is written atomically, then the row is updated: status becomes
        :attr:`ImageStatus.IN_PROGRESS` unless it is
        :attr:`ImageStatus.REVIEWED`; ``updated_at`` / ``updated_by`` are set; a
        ``save_labels`` event is logged.

        Parameters
        ----------
        name : str
            The image.
        labels : numpy.ndarray
            ``H x W`` ``uint8`` class ids, 255 = unlabeled.
        user : str, optional
            Who saved them (default: the logged-in user).
        labelset_version : int, optional
            The :attr:`labelset_version` ``labels`` is numbered for; when given and
            the project has migrated since, the save is refused.

        Raises
        ------
        ValueError
            ``labels`` is not a non-empty 2-D ``uint8`` array.
        ProjectError
            Unknown image, stale ``labelset_version``, or the file cannot be written.
        """
        arr = _check_map(labels, "labels")
        who = user or _current_user()
        # encode outside the lock: other threads (the window) never wait for a PNG encode
        palette = (self.labelset or preset("camvid11")).palette()
        data = encode_label_map(arr, palette=palette)
        with self._transaction() as db:
            row = self._row(db, name)
            version = self._check_version(db, labelset_version, name)
            file_name = _versioned_name(row.name, version)
            self._write_bytes(self._labels_dir / file_name, data, name)
            status = (
                ImageStatus.REVIEWED
                if row.status is ImageStatus.REVIEWED
                else ImageStatus.IN_PROGRESS
            )
            now = time.time()
            db.execute(
                "UPDATE images SET label_file = ?, status = ?, updated_at = ?, updated_by = ? "
                "WHERE id = ?",
                (file_name, status.value, now, who, row.id),
            )
            detail = {"status": status.value, "shape": list(arr.shape)}
            if row.status is not status:
                detail["from"] = row.status.value
            self._event(db, row.id, "save_labels", who, now, detail)

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

    def import_labels(
        self,
        items: Sequence[tuple[str, np.ndarray]],
        *,
        labelset: LabelSet | None = None,
        user: str | None = None,
    ) -> int:
        """Store human labels for many images at once, all or nothing, as REVIEWED.

        Every label file is written first, under a name no row uses yet
        (``<image name>.v<N>.import-<token>.png``), inside the write transaction;
        then ONE commit points every row at its new file, sets the status to
        :attr:`ImageStatus.REVIEWED`, logs an ``import_labels`` event per image
        and, when ``labelset`` is given, stores it. Before that commit nothing is
        visible: a failure deletes the new files, and a crash leaves files no row
        names, which the orphan sweep of :meth:`open` deletes (their names never
        match the "recover a human save" rule). Label files the rows named before
        are deleted after the commit.

        Parameters
        ----------
        items : sequence of (str, numpy.ndarray)
            Image name and its ``H x W`` ``uint8`` label map (class ids, 255 =
            unlabeled). Names must be unique and known to the project (call
            :meth:`scan` after adding image files).
        labelset : LabelSet, optional
            The label set the maps are numbered for. Stored when the project has
            none, or has one but no stored label or prediction maps; when the
            project already has maps, it must have the same classes.
        user : str, optional
            Who imported them (default: the logged-in user).

        Returns
        -------
        int
            The number of label maps stored.

        Raises
        ------
        ValueError
            A map is not a non-empty 2-D ``uint8`` array, or a name repeats.
        ProjectError
            Unknown image, a map holds ids outside the label set, ``labelset``
            conflicts with stored maps, or a file cannot be written; the project
            is left as it was.
        """
        checked: list[tuple[str, np.ndarray]] = []
        seen: set[str] = set()
        for name, arr in items:
            if name in seen:
                raise ValueError(f"import_labels: image {name!r} is given twice")
            seen.add(name)
            checked.append((name, _check_map(arr, f"labels of {name!r}")))
        if labelset is not None and not isinstance(labelset, LabelSet):
            raise TypeError(f"import_labels needs a LabelSet, got {type(labelset).__name__}")
        who = user or _current_user()
        token = secrets.token_hex(4)
        written: list[Path] = []
        old_files: list[Path] = []
        changed_labelset = False
        with self._lock:
            # Leftovers of a sweep skipped at open must not be mistaken for new files.
            self._sweep_orphans()
            with self._transaction() as db:
                try:
                    stored = self._stored_labelset(db)
                    if labelset is not None and (
                        stored is None
                        or not stored.same_classes(labelset)
                        or stored.name != labelset.name
                        or stored.unlabeled_color != labelset.unlabeled_color
                    ):
                        if stored is not None and not stored.same_classes(labelset):
                            (maps,) = db.execute(
                                "SELECT COUNT(*) FROM images WHERE label_file IS NOT NULL "
                                "OR pred_file IS NOT NULL"
                            ).fetchone()
                            if maps:
                                raise ProjectError(
                                    f"the imported label set {labelset.name!r} has other classes "
                                    f"than the project's {stored.name!r}, and {maps} images have "
                                    "stored label maps; map the classes by name first"
                                )
                        _set_meta(db, "labelset", labelset.to_json())
                        self._event(
                            db, None, "set_labelset", who, time.time(), {"name": labelset.name}
                        )
                        changed_labelset = True
                        stored = labelset
                    ls = stored or preset("camvid11")
                    version = _meta_version(db)
                    palette = ls.palette()
                    now = time.time()
                    updates: list[tuple[str, str, float, str, int]] = []
                    events: list[tuple[int, str, str, float, str]] = []
                    for name, arr in checked:
                        row = self._row(db, name)
                        outside = (arr >= ls.num_classes) & (arr != UNLABELED)
                        if outside.any():  # not just the maximum: 30 beside 255 counts
                            bad = np.unique(arr[outside])
                            raise ProjectError(
                                f"{name}: the labels hold ids {bad.tolist()[:10]} that are not "
                                f"classes of {ls.name!r} (0..{ls.num_classes - 1}) or 255"
                            )
                        file_name = f"{_file_base(row.name)}.v{version}.import-{token}.png"
                        path = self._labels_dir / file_name
                        written.append(path)
                        self._write_map(path, arr, palette, name)
                        if row.label_file is not None:
                            old_files.append(self._labels_dir / row.label_file)
                        updates.append((file_name, ImageStatus.REVIEWED.value, now, who, row.id))
                        detail = {
                            "status": ImageStatus.REVIEWED.value,
                            "shape": list(arr.shape),
                            "from": row.status.value,
                            "replaced_labels": row.label_file is not None,
                        }
                        events.append((row.id, "import_labels", who, now, json.dumps(detail)))
                    db.executemany(
                        "UPDATE images SET label_file = ?, status = ?, updated_at = ?, "
                        "updated_by = ? WHERE id = ?",
                        updates,
                    )
                    db.executemany(
                        "INSERT INTO events (image_id, action, user, time, detail) "
                        "VALUES (?, ?, ?, ?, ?)",
                        events,
                    )
                except BaseException:
                    # Not committed: no row names the new files. Remove them while the
                    # write lock keeps other processes away from the labels folder.
                    _discard(written)
                    raise
            # Committed. What follows only tidies.
            if changed_labelset:
                self._refresh_settings_copy()
            _discard(old_files)
        _log.info("imported labels of %d images into %s", len(checked), self._folder)
        return len(checked)

    # -------------------------------------------------------------- predictions

    def load_prediction(self, name: str) -> tuple[np.ndarray, np.ndarray] | None:
        """Return the stored prediction of image ``name``, or None if there is none.

        Returns
        -------
        tuple of numpy.ndarray or None
            ``(labels, confidence)``: ``H x W`` ``uint8`` class ids and ``H x W``
            ``uint8`` confidence, 0..255 standing for 0..1.

        Raises
        ------
        ProjectError
            The project has no image of that name.
        ImageReadError
            A stored file is missing or damaged (the message names it).
        """
        with self._read() as db:
            row = self._row(db, name)
            if row.pred_file is None or row.conf_file is None:
                return None
            labels = read_label_map(self._predictions_dir / row.pred_file)
            confidence = read_label_map(self._predictions_dir / row.conf_file)
        return labels, confidence

    def save_prediction(
        self,
        name: str,
        labels: np.ndarray,
        confidence: np.ndarray,
        *,
        model: str,
        labelset_version: int | None = None,
    ) -> None:
        """Store a model's prediction for image ``name``.

        Both maps are written atomically; the mean confidence goes to the
        index. The status becomes :attr:`ImageStatus.PREDICTED` only if it was
        :attr:`ImageStatus.UNLABELED`: a prediction never touches human work.

        Parameters
        ----------
        name : str
            The image.
        labels : numpy.ndarray
            ``H x W`` ``uint8`` predicted class ids.
        confidence : numpy.ndarray
            ``H x W`` per-pixel confidence: floats in 0..1, or ``uint8`` 0..255.
        model : str
            Which model made it (logged).
        labelset_version : int, optional
            As in :meth:`save_labels`: refuse a prediction numbered for a label
            set the project has since migrated away from.

        Raises
        ------
        ValueError
            Wrong dtype or shape, shapes that differ, or confidences outside 0..1.
        ProjectError
            Unknown image, stale ``labelset_version``, or the files cannot be written.
        """
        arr = _check_map(labels, "predicted labels")
        conf = _confidence_to_uint8(confidence, arr.shape)
        mean = float(conf.mean(dtype=np.float64)) / 255.0
        who = _current_user()
        palette = (self.labelset or preset("camvid11")).palette()
        pred_data = encode_label_map(arr, palette=palette)  # outside the lock
        conf_data = encode_label_map(conf)
        with self._transaction() as db:
            row = self._row(db, name)
            version = self._check_version(db, labelset_version, name)
            pred_name = _versioned_name(row.name, version)
            conf_name = f"{_file_base(row.name)}.conf.png"
            self._write_bytes(self._predictions_dir / pred_name, pred_data, name)
            self._write_bytes(self._predictions_dir / conf_name, conf_data, name)
            status = ImageStatus.PREDICTED if row.status is ImageStatus.UNLABELED else row.status
            now = time.time()
            db.execute(
                "UPDATE images SET pred_file = ?, conf_file = ?, pred_model = ?, confidence = ?, "
                "status = ? WHERE id = ?",
                (pred_name, conf_name, model, mean, status.value, row.id),
            )
            detail = {"model": model, "confidence": round(mean, 6), "status": status.value}
            self._event(db, row.id, "save_prediction", who, now, detail)

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

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock and a write transaction (BEGIN IMMEDIATE); commit on success."""
        with self._lock:
            db = self._check_open()
            with _db_errors(self._state_dir / _DB_NAME):
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")

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

    def _remap_all(
        self,
        db: sqlite3.Connection,
        lut: np.ndarray,
        new_labelset: LabelSet,
        who: str,
        written: list[Path],
        old_files: list[Path],
    ) -> tuple[int, int]:
        """Write every remapped map under its new name, then repoint the rows (uncommitted).

        ``written`` (new files) and ``old_files`` (files no row names once this
        commits) are filled as it goes, so the caller can clean up after a failure
        or a commit. Returns the new label-set version and the number of files
        remapped.
        """
        old_ls = self._stored_labelset(db) or preset("camvid11")
        _check_lut_targets(lut, old_ls, new_labelset)
        new_version = _meta_version(db) + 1
        palette = new_labelset.palette()
        rows = db.execute(
            "SELECT id, name, label_file, pred_file, conf_file FROM images "
            "WHERE label_file IS NOT NULL OR pred_file IS NOT NULL"
        ).fetchall()
        updates: list[tuple[str | None, str | None, int]] = []
        dropped_preds: list[tuple[int]] = []
        count = 0
        for image_id, name, label_file, pred_file, conf_file in rows:
            new_names: list[str | None] = []
            for folder, old_name in (
                (self._labels_dir, label_file),
                (self._predictions_dir, pred_file),
            ):
                new_name = None
                if old_name is not None:
                    dst = folder / _versioned_name(name, new_version)
                    written.append(dst)
                    if _remap_file(folder / old_name, dst, lut, palette):
                        count += 1
                        new_name = dst.name
                    old_files.append(folder / old_name)
                new_names.append(new_name)
            new_label, new_pred = new_names
            if pred_file is not None and new_pred is None:
                dropped_preds.append((image_id,))
                if conf_file is not None:
                    old_files.append(self._predictions_dir / conf_file)
            updates.append((new_label, new_pred, image_id))

        now = time.time()
        db.executemany("UPDATE images SET label_file = ?, pred_file = ? WHERE id = ?", updates)
        db.executemany(
            "UPDATE images SET conf_file = NULL, confidence = NULL, pred_model = NULL WHERE id = ?",
            dropped_preds,
        )
        row_detail = json.dumps({"labelset": new_labelset.name, "version": new_version})
        db.executemany(
            "INSERT INTO events (image_id, action, user, time, detail) VALUES (?, ?, ?, ?, ?)",
            [(u[2], "migrate_classes", who, now, row_detail) for u in updates],
        )
        _set_meta(db, "labelset_version", str(new_version))
        _set_meta(db, "labelset", new_labelset.to_json())
        detail = {
            "from": old_ls.name,
            "to": new_labelset.name,
            "version": new_version,
            "files": count,
            "lut": [int(v) for v in lut],
        }
        self._event(db, None, "migrate_classes", who, now, detail)
        return new_version, count

    def _write_bytes(self, path: Path, data: bytes, name: str) -> None:
        try:
            atomic_write_bytes(path, data)
        except OSError as exc:
            raise ProjectError(f"{name}: cannot write {path} ({exc.strerror or exc})") from exc

    def _write_map(
        self, path: Path, arr: np.ndarray, palette: np.ndarray | None, name: str
    ) -> None:
        try:
            write_label_map(path, arr, palette=palette)
        except OSError as exc:
            raise ProjectError(f"{name}: cannot write {path} ({exc.strerror or exc})") from exc

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

    def _write_settings(self) -> None:
        """Write settings.json: the settings and a copy of the database's label set."""
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

    def _sweep_orphans(self) -> None:
        with self._transaction() as db:
            version = _meta_version(db)
            rows = db.execute(
                "SELECT id, name, status, label_file, pred_file, conf_file FROM images"
            ).fetchall()
            labels_used = {r[3] for r in rows if r[3] is not None}
            preds_used = {f for r in rows for f in (r[4], r[5]) if f is not None}
            unlabeled = {_versioned_name(r[1], version): r for r in rows if r[3] is None}
            now = time.time()
            removed: list[Path] = []
            for entry in _entries(self._labels_dir):
                if entry.name in labels_used:
                    continue
                row = unlabeled.get(entry.name)
                if row is not None:
                    status = ImageStatus(row[2])
                    if status in (ImageStatus.UNLABELED, ImageStatus.PREDICTED):
                        status = ImageStatus.IN_PROGRESS
                    db.execute(
                        "UPDATE images SET label_file = ?, status = ? WHERE id = ?",
                        (entry.name, status.value, row[0]),
                    )
                    self._event(
                        db, row[0], "recovered_labels", _current_user(), now, {"file": entry.name}
                    )
                    _log.warning("%s: recovered labels saved before a crash", entry)
                else:
                    removed.append(entry)
            removed.extend(e for e in _entries(self._predictions_dir) if e.name not in preds_used)
            _discard(removed)
        if removed:
            _log.info("%s: removed %d files of unfinished work", self._folder, len(removed))


# --------------------------------------------------------------------------- recent projects


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


# --------------------------------------------------------------------------- helpers


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


def _connect(path: Path, *, create: bool) -> sqlite3.Connection:
    """Open (or create) project.sqlite, check its version, create or check the schema."""
    if not path.exists() and not create:
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


def _load_settings(path: Path) -> dict[str, Any]:
    """Read settings.json; a damaged file is set aside (never deleted) and replaced."""
    fresh: dict[str, Any] = {"settings": {}, "labelset": None}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return fresh
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        data = exc
    if not isinstance(data, dict) or not isinstance(data.get("settings"), dict):
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


def _current_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):  # no login name (some containers)
        return "unknown"


def _file_base(name: str) -> str:
    """The image name, shortened with a digest when too long for a derived file name."""
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) <= _MAX_BASE_BYTES:
        return name
    digest = hashlib.sha1(raw).hexdigest()[:16]
    head = raw[:100].decode("utf-8", "ignore")
    return f"{head}~{digest}"


def _versioned_name(name: str, version: int) -> str:
    return f"{_file_base(name)}.v{version}.png"


def _entries(folder: Path) -> list[Path]:
    """Plain files in ``folder`` (temp files of interrupted atomic writes included)."""
    try:
        with os.scandir(folder) as it:
            return [Path(e.path) for e in it if e.is_file(follow_symlinks=False)]
    except FileNotFoundError:
        return []


def _discard(paths: Iterable[Path]) -> None:
    """Delete files, ignoring those already gone; other failures are logged."""
    for p in paths:
        try:
            p.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            _log.warning("cannot delete %s: %s", p, exc)


def _record(row: tuple[Any, ...]) -> ImageRecord:
    name, status, updated_at, updated_by, confidence, has_labels, has_prediction = row
    return ImageRecord(
        name=name,
        status=ImageStatus(status),
        updated_at=updated_at,
        updated_by=updated_by,
        confidence=confidence,
        has_labels=bool(has_labels),
        has_prediction=bool(has_prediction),
    )


def _check_map(a: object, what: str) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        raise ValueError(f"{what} must be a numpy array, got {type(a).__name__}")
    if a.dtype != np.uint8:
        raise ValueError(f"{what} must have dtype uint8, got {a.dtype}")
    if a.ndim != 2:
        raise ValueError(f"{what} must be a 2-D H x W array, got shape {a.shape}")
    if 0 in a.shape:
        raise ValueError(f"{what} is empty (shape {a.shape})")
    return np.ascontiguousarray(a)


def _confidence_to_uint8(c: object, shape: tuple[int, ...]) -> np.ndarray:
    if not isinstance(c, np.ndarray):
        raise ValueError(f"confidence must be a numpy array, got {type(c).__name__}")
    if c.shape != shape:
        raise ValueError(
            f"confidence has shape {c.shape}, but the predicted labels have shape {shape}"
        )
    if c.dtype == np.uint8:
        return np.ascontiguousarray(c)
    if c.dtype.kind != "f":
        raise ValueError(f"confidence must be floats in 0..1 or uint8 0..255, got {c.dtype}")
    low, high = float(np.min(c)), float(np.max(c))
    if not (math.isfinite(low) and math.isfinite(high)) or low < 0.0 or high > 1.0:
        raise ValueError(f"confidence must lie in 0..1, got values from {low} to {high}")
    return np.rint(c.astype(np.float32) * np.float32(255.0)).astype(np.uint8)


def _remap_file(src: Path, dst: Path, lut: np.ndarray, palette: np.ndarray) -> bool:
    """Write ``lut[src]`` to ``dst`` atomically; False when ``src`` has gone from disk."""
    try:
        old = read_label_map(src)
    except ImageNotFoundError:
        _log.warning("%s: stored label map is gone; dropping it from the index", src)
        return False
    except ImageReadError as exc:
        raise ProjectError(f"cannot migrate classes: {exc}; nothing was changed") from exc
    try:
        write_label_map(dst, cv2.LUT(old, lut), palette=palette)
    except OSError as exc:
        raise ProjectError(
            f"cannot migrate classes: cannot write {dst} ({exc.strerror or exc}); "
            "nothing was changed"
        ) from exc
    return True


def _check_lut(lut: object) -> np.ndarray:
    if not isinstance(lut, np.ndarray) or lut.dtype != np.uint8 or lut.shape != (256,):
        got = (
            f"shape {lut.shape} dtype {lut.dtype}"
            if isinstance(lut, np.ndarray)
            else type(lut).__name__
        )
        raise ValueError(f"the class lookup table must be 256 uint8 values, got {got}")
    return np.ascontiguousarray(lut)


def _check_lut_targets(lut: np.ndarray, old: LabelSet, new: LabelSet) -> None:
    targets = lut[: old.num_classes]
    bad = [
        (i, int(v))
        for i, v in enumerate(targets)
        if int(v) >= new.num_classes and int(v) != UNLABELED
    ]
    if bad:
        shown = ", ".join(f"{old.names[i]} ({i}) -> {v}" for i, v in bad[:5])
        raise ValueError(
            f"the lookup table maps classes outside the new label set {new.name!r} "
            f"(ids 0..{new.num_classes - 1} or {UNLABELED}): {shown}"
        )
