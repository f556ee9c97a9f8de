"""The project's classes: changing its label set, and migrating the stored maps.

:meth:`_MigrationMixin.set_labelset` stores a label set that keeps the meaning
of every stored id (first choice, renaming, recolouring, classes added at the
end). :meth:`_MigrationMixin.migrate_classes` renumbers every stored label map
for one that does not (classes removed, merged or reordered).

Crash safety of class migration
-------------------------------
A crash (kill -9, power cut) part-way through a migration must never leave
files in old and new numbering that cannot be told apart. The design:

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
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from pathlib import Path

import cv2
import numpy as np

from segstudio.core.errors import ImageNotFoundError, ImageReadError, ProjectError
from segstudio.core.labelset import UNLABELED, LabelSet, preset
from segstudio.core.migrate import check_lut
from segstudio.io.images import read_label_map, write_label_map
from segstudio.io.project.aside import _AsideMixin
from segstudio.io.project.db import _current_user, _meta_version, _set_meta
from segstudio.io.project.files import _discard, _versioned_name
from segstudio.io.project.records import ImageStatus

_log = logging.getLogger(__name__)


class _MigrationMixin(_AsideMixin):
    """The label-set and class-migration methods of :class:`~segstudio.io.project.Project`."""

    # ---------------------------------------------------------------- label set

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

    # ---------------------------------------------------------------- migration

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
        table = check_lut(lut)
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

    def migration_lut(self, from_version: int) -> np.ndarray | None:
        """The lookup table from label-set version ``from_version`` to the current one.

        Composed from the tables :meth:`migrate_classes` recorded in the event
        log, so labels kept in memory while the classes were migrated (by another
        handle or process) can be renumbered to the project's numbering and
        saved rather than refused.

        Returns
        -------
        numpy.ndarray or None
            256 ``uint8`` entries (the identity when ``from_version`` is current),
            or None when a step of the way was not recorded or ``from_version`` is
            newer than the project's.
        """
        with self._read() as db:
            current = _meta_version(db)
            rows = db.execute(
                "SELECT detail FROM events WHERE image_id IS NULL AND action = 'migrate_classes' "
                "ORDER BY id"
            ).fetchall()
        if from_version > current:
            return None
        steps: dict[int, np.ndarray] = {}
        for (text,) in rows:
            try:
                detail = json.loads(text)
                version, table = int(detail["version"]), detail["lut"]
                steps[version] = check_lut(np.asarray(table, dtype=np.uint8))
            except (ValueError, TypeError, KeyError, OverflowError):
                continue  # an event without a usable table: that step stays unknown
        lut = np.arange(256, dtype=np.uint8)
        for version in range(from_version + 1, current + 1):
            step = steps.get(version)
            if step is None:
                return None
            lut = step[lut]
        return lut

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
            "SELECT id, name, label_file, pred_file, conf_file, status FROM images "
            "WHERE label_file IS NOT NULL OR pred_file IS NOT NULL"
        ).fetchall()
        updates: list[tuple[str | None, str | None, int]] = []
        dropped_preds: list[tuple[int]] = []
        # reviewed images whose labels lost pixels (a class removed): in progress again,
        # so they are neither exported nor trained on as if they were complete
        reopened: list[tuple[int, int]] = []
        count = 0
        for image_id, name, label_file, pred_file, conf_file, status in rows:
            new_names: list[str | None] = []
            for folder, old_name in (
                (self._labels_dir, label_file),
                (self._predictions_dir, pred_file),
            ):
                new_name = None
                if old_name is not None:
                    dst = folder / _versioned_name(name, new_version)
                    written.append(dst)
                    lost = _remap_file(folder / old_name, dst, lut, palette)
                    if lost is not None:
                        count += 1
                        new_name = dst.name
                        if old_name == label_file and lost and status == "reviewed":
                            reopened.append((image_id, lost))
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
        db.executemany(
            "UPDATE images SET status = ?, updated_at = ?, updated_by = ? WHERE id = ?",
            [(ImageStatus.IN_PROGRESS.value, now, who, image_id) for image_id, _ in reopened],
        )
        db.executemany(
            "INSERT INTO events (image_id, action, user, time, detail) VALUES (?, ?, ?, ?, ?)",
            [
                (image_id, "reopened", who, now, json.dumps({"unlabelled_by_migration": lost}))
                for image_id, lost in reopened
            ],
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


def _remap_file(src: Path, dst: Path, lut: np.ndarray, palette: np.ndarray) -> int | None:
    """Write ``lut[src]`` to ``dst`` atomically and return how many labelled pixels it
    left unlabelled (their class removed); None when ``src`` has gone from disk."""
    try:
        old = read_label_map(src)
    except ImageNotFoundError:
        _log.warning("%s: stored label map is gone; dropping it from the index", src)
        return None
    except ImageReadError as exc:
        raise ProjectError(f"cannot migrate classes: {exc}; nothing was changed") from exc
    new = cv2.LUT(old, lut)
    try:
        write_label_map(dst, new, palette=palette)
    except OSError as exc:
        raise ProjectError(
            f"cannot migrate classes: cannot write {dst} ({exc.strerror or exc}); "
            "nothing was changed"
        ) from exc
    return int(np.count_nonzero((new == UNLABELED) & (old != UNLABELED)))


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
