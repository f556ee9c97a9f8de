"""Labels kept aside: out of use, never deleted.

Human labels are never overwritten by labels of another size nor dropped. When
an image file is replaced by one of another size, its labels are moved to
``.segstudio/labels/aside/`` (:meth:`_AsideMixin.set_labels_aside`; a save of
labels of another size does the same first, see
:meth:`~segstudio.io.project.files._LabelFilesMixin.save_labels`). Edits that
cannot be stored in the project's numbering any more (the classes were
migrated with no recorded way to renumber them) are written there too
(:meth:`_AsideMixin.keep_labels_aside`). Each is recorded in the event log
(``labels_set_aside``, ``labels_kept_aside``) with the file, the reason and the
label-set version it is numbered for. Nothing in ``aside/`` is ever deleted,
migrated or swept by SegStudio.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path
from typing import Final

import numpy as np

from segstudio.core.errors import ProjectError
from segstudio.io.images import encode_label_map
from segstudio.io.project.db import _current_user, _meta_version
from segstudio.io.project.files import _check_map, _discard, _file_base, _LabelFilesMixin
from segstudio.io.project.records import ImageStatus, _Row

_log = logging.getLogger(__name__)

ASIDE_DIR_NAME: Final[str] = "aside"
"""Folder inside ``labels/`` for labels kept aside (never deleted by SegStudio)."""


class _AsideMixin(_LabelFilesMixin):
    """The methods of :class:`~segstudio.io.project.Project` that keep labels aside."""

    def set_labels_aside(self, name: str, reason: str, *, user: str | None = None) -> Path | None:
        """Move the stored human labels of image ``name`` out of use, never deleting them.

        For labels that no longer fit the image (its file was replaced by one of
        another size). The label file is copied atomically to
        ``.segstudio/labels/aside/<label file>.aside-<time>.png``; then the row
        forgets it (status back to :attr:`ImageStatus.PREDICTED` or
        :attr:`ImageStatus.UNLABELED`) and a ``labels_set_aside`` event records
        the file, the reason, the label-set version and the previous status.
        Only then is the old file removed.

        Returns
        -------
        Path or None
            The file the labels are kept in, or None when there were none.

        Raises
        ------
        ProjectError
            Unknown image, read-only project, or the copy cannot be written.
        """
        who = user or _current_user()
        with self._transaction() as db:
            row = self._row(db, name)
            if row.label_file is None:
                return None
            aside = self._move_aside(db, row, reason, who)
        # Committed: no row names the old file. (A crash before this line leaves it to
        # the orphan sweep, which adopts it again; its copy in aside/ stays either way.)
        _discard([self._labels_dir / row.label_file])
        _log.warning("%s: %s; the labels were kept aside in %s", name, reason, aside)
        return aside

    def keep_labels_aside(
        self,
        name: str,
        labels: np.ndarray,
        reason: str,
        *,
        labelset_version: int | None = None,
        user: str | None = None,
    ) -> Path:
        """Write labels that cannot be stored as the image's labels to ``labels/aside/``.

        For edits numbered for a label set the project has left without a
        recorded way back (see :meth:`migration_lut`): they are kept, not
        dropped. A ``labels_kept_aside`` event records the file and the reason;
        the image's stored labels do not change.

        Returns
        -------
        Path
            The file written (``<image>.v<N>.unsaved-<time>.png``).

        Raises
        ------
        ValueError
            ``labels`` is not a non-empty 2-D ``uint8`` array.
        ProjectError
            Unknown image, read-only project, or the file cannot be written.
        """
        arr = _check_map(labels, "labels")
        who = user or _current_user()
        data = encode_label_map(arr)
        with self._transaction() as db:
            row = self._row(db, name)
            version = _meta_version(db) if labelset_version is None else labelset_version
            stem = f"{_file_base(row.name)}.v{version}.unsaved"
            path = self._aside_path(stem)
            self._write_bytes(path, data, name)
            detail = {
                "file": f"{ASIDE_DIR_NAME}/{path.name}",
                "reason": reason,
                "labelset_version": version,
                "shape": list(arr.shape),
            }
            self._event(db, row.id, "labels_kept_aside", who, time.time(), detail)
        _log.warning("%s: %s; the labels were kept in %s", name, reason, path)
        return path

    def _move_aside(self, db: sqlite3.Connection, row: _Row, reason: str, who: str) -> Path:
        """Copy the row's label file to aside/ and make the row forget it, inside the
        caller's transaction; the caller removes or replaces the old file after that.

        A crash before the commit leaves the row as it was and a spare copy in aside/.
        """
        assert row.label_file is not None
        src = self._labels_dir / row.label_file
        try:
            data = src.read_bytes()
        except FileNotFoundError:
            data = None
        except OSError as exc:
            raise ProjectError(
                f"{row.name}: cannot read {src} to keep it aside ({exc.strerror or exc})"
            ) from exc
        dst = None
        if data is not None:
            dst = self._aside_path(Path(row.label_file).stem)
            self._write_bytes(dst, data, row.name)
        status = ImageStatus.PREDICTED if row.pred_file is not None else ImageStatus.UNLABELED
        now = time.time()
        db.execute(
            "UPDATE images SET label_file = NULL, status = ?, updated_at = ?, updated_by = ? "
            "WHERE id = ?",
            (status.value, now, who, row.id),
        )
        detail = {
            "file": None if dst is None else f"{ASIDE_DIR_NAME}/{dst.name}",
            "reason": reason,
            "labelset_version": _meta_version(db),
            "from": row.status.value,
            "status": status.value,
        }
        self._event(db, row.id, "labels_set_aside", who, now, detail)
        return dst if dst is not None else src

    def _aside_path(self, stem: str) -> Path:
        """A new, unused file name in labels/aside/ (the folder is made if needed)."""
        folder = self._labels_dir / ASIDE_DIR_NAME
        try:
            folder.mkdir(exist_ok=True)
        except OSError as exc:
            raise ProjectError(f"cannot create {folder} ({exc.strerror or exc})") from exc
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for k in range(1000):
            extra = "" if k == 0 else f"-{k}"
            path = folder / f"{stem}.aside-{stamp}{extra}.png"
            if not path.exists():
                return path
        raise ProjectError(f"{folder}: too many files kept aside at {stamp}")
