"""Label and prediction files: their names, and reading and writing them with the index.

Human label maps live in ``.segstudio/labels/`` as ``<image name>.v<N>.png``,
model predictions in ``.segstudio/predictions/`` as ``<image name>.v<N>.png``
plus a per-pixel confidence map ``<image name>.conf.png``; ``N`` is the
label-set numbering the map is in (see :mod:`segstudio.io.project.migration`).
Every map is ``uint8`` H x W, class ids ``0..N-1`` and 255 for unlabeled.

Each save writes its PNG atomically under the name the row will hold, inside
the write transaction that updates the row, so a file change and its database
update stay paired (see :mod:`segstudio.io.project.db`). Files that no row names
are orphans of unfinished work: :meth:`_LabelFilesMixin._sweep_orphans` deletes
them, or adopts a human save whose database update did not happen.

Human labels are never overwritten by labels of another size (the image file
was replaced by one of another size) nor dropped: they are moved to
``.segstudio/labels/aside/`` under a new name, with a ``labels_set_aside``
event naming the file (see :mod:`segstudio.io.project.aside`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import secrets
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from segstudio.core.atomic import atomic_write_bytes
from segstudio.core.errors import ProjectError
from segstudio.core.labelset import UNLABELED, LabelSet, preset
from segstudio.io.images import encode_label_map, read_label_map, write_label_map
from segstudio.io.project.db import _current_user, _meta_version, _set_meta
from segstudio.io.project.records import ImageStatus, _Row
from segstudio.io.project.settings import _SettingsMixin

_log = logging.getLogger(__name__)

# File names under labels/ and predictions/ are "<base>.v<N>.png"; keep them well
# below the usual 255-byte limit of a file name.
_MAX_BASE_BYTES = 200

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class _LabelFilesMixin(_SettingsMixin):
    """The label and prediction methods of :class:`~segstudio.io.project.Project`."""

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
        ``save_labels`` event is logged. Stored labels of another size are not
        overwritten: they are set aside first (see :meth:`set_labels_aside`) and
        the status starts again from :attr:`ImageStatus.IN_PROGRESS`.

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
        aside: Path | None = None
        old_file: Path | None = None
        with self._transaction() as db:
            row = self._row(db, name)
            version = self._check_version(db, labelset_version, name)
            if row.label_file is not None:
                stored = _png_shape(self._labels_dir / row.label_file)
                if stored is not None and stored != arr.shape:
                    reason = (
                        f"new labels of {arr.shape[1]} x {arr.shape[0]} pixels replace labels "
                        f"of {stored[1]} x {stored[0]}"
                    )
                    # the new file may take the old one's name: it is copied aside first
                    aside = self._move_aside(db, row, reason, who)
                    old_file = self._labels_dir / row.label_file
                    row = self._row(db, name)
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
            detail: dict[str, object] = {"status": status.value, "shape": list(arr.shape)}
            if row.status is not status:
                detail["from"] = row.status.value
            self._event(db, row.id, "save_labels", who, now, detail)
        if aside is not None:
            if old_file is not None and old_file.name != file_name:
                _discard([old_file])
            _log.warning("%s: labels of another size were kept aside in %s", name, aside)

    def _move_aside(self, db: sqlite3.Connection, row: _Row, reason: str, who: str) -> Path:
        """Keep the row's label file aside: :mod:`segstudio.io.project.aside` does it."""
        raise NotImplementedError

    def import_labels(
        self,
        items: Sequence[tuple[str, np.ndarray]],
        *,
        labelset: LabelSet | None = None,
        user: str | None = None,
        token: str | None = None,
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
        token : str, optional
            (hook for segstudio.io.datasets.staging) Names this import: its
            ``import_labels`` events carry it as ``detail["import"]``, so a dataset
            import killed around the commit can tell afterwards whether it
            committed. Default: a random one. Letters and digits only.

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
        # --- hook for segstudio.io.datasets.staging (dataset import recovery) ---
        if token is not None and not token.isalnum():
            raise ValueError(f"import_labels: token must be letters and digits, got {token!r}")
        token = token or secrets.token_hex(4)
        # --- end of hook ---
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
                            "import": token,  # hook for segstudio.io.datasets.staging
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
                    self._pending.append(("import_labels", None))  # every record may change
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

    # -------------------------------------------------------------------- files

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


def _png_shape(path: Path) -> tuple[int, int] | None:
    """``(height, width)`` from a PNG's header, or None when it is not a readable PNG."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(24)
    except OSError:
        return None
    if len(head) < 24 or head[:8] != _PNG_SIGNATURE or head[12:16] != b"IHDR":
        return None
    return int.from_bytes(head[20:24], "big"), int.from_bytes(head[16:20], "big")


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
