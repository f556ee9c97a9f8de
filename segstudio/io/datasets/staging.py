"""Staged image copies: a dataset import is all or nothing, even under kill -9.

An import copies its new images into the project folder and stores their labels.
Copying straight into the folder would leave, after a kill, images without their
labels (and half-written temporary files) among the user's own. So the copies
are made in a staging folder inside the project's state folder, on the same file
system::

    FOLDER/.segstudio/import-staging/<token>/
        files/<name>     the copies (each flushed to disk)
        manifest.json    written once every copy is made: which files, and the
                         identity (device, inode, size) of each

and then, with :class:`Staging`:

1. :meth:`~Staging.stage` makes the copies, then writes the manifest;
2. :meth:`~Staging.move_in` renames each copy into the project folder;
3. the import scans the folder and stores every label in ONE transaction whose
   ``import_labels`` events carry the token
   (:meth:`Project.import_labels <segstudio.io.project.Project.import_labels>`):
   that commit is the point of no return;
4. :meth:`~Staging.close` deletes the staging folder.

:func:`sweep_import_staging` puts right what a killed import left, and every
import runs it first (the store may run it when it opens a project): a staging
folder without a manifest moved nothing and is deleted; one whose import
committed is deleted; one whose import did not commit takes its moved copies
back out of the project folder (only files that are still the very copies, by
device and inode, and that nobody has labelled, predicted or reviewed since) and
is deleted. So after a kill and the next import or open, the project holds
either every new image with its labels, or none of them.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from segstudio.core.atomic import atomic_write_text
from segstudio.core.errors import DatasetError, SegStudioError

if TYPE_CHECKING:
    from segstudio.io.project import Project

__all__ = ["STAGING_DIR_NAME", "Staging", "sweep_import_staging"]

_log = logging.getLogger(__name__)

STAGING_DIR_NAME: Final[str] = "import-staging"
"""The folder inside ``.segstudio`` that holds the imports' staging folders."""

_MANIFEST = "manifest.json"
_FILES = "files"

#: Staging folders imports of this process are using (a sweep leaves them alone).
_active: set[Path] = set()
_active_guard = threading.Lock()


class Staging:
    """One import's staging folder (see the module docstring); use as a context manager.

    Leaving the ``with`` block deletes the staging folder when the import
    committed or moved nothing in; after a failure before the commit it takes the
    moved copies back out first (the same roll-back a sweep does after a kill).
    """

    def __init__(self, project: Project) -> None:
        self.project = project
        self.token = secrets.token_hex(8)
        self.root = project.state_dir / STAGING_DIR_NAME / self.token
        self.names: list[str] = []
        self.committed = False

    def __enter__(self) -> Staging:
        with _active_guard:
            _active.add(self.root)
        try:
            (self.root / _FILES).mkdir(parents=True)
        except BaseException:
            self._forget()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        try:
            manifest = _read_manifest(self.root)
            if not self.committed and not (
                manifest is not None and _committed(self.project, manifest)
            ):
                _roll_back(self.project, self.root, manifest)
        finally:
            self._forget()
            _remove(self.root)

    def _forget(self) -> None:
        with _active_guard:
            _active.discard(self.root)

    def copy(self, source: Path, name: str) -> None:
        """Copy ``source`` into the staging folder as ``name``, flushed to disk.

        Raises
        ------
        OSError
            The copy failed (a full disk, ...); its file name is the image's
            place in the project, so the message names what could not be made.
        """
        dest = self.root / _FILES / name
        try:
            shutil.copyfile(source, dest)
            fd = os.open(dest, os.O_RDWR | getattr(os, "O_BINARY", 0))
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:  # a full disk: named as the image the project would get
            raise OSError(exc.errno, exc.strerror, str(self.project.folder / name)) from exc
        self.names.append(name)

    def stage(self) -> None:
        """Write the manifest: from now on the copies may move into the project folder."""
        files: dict[str, list[int]] = {}
        for name in self.names:
            st = (self.root / _FILES / name).stat()
            files[name] = [st.st_dev, st.st_ino, st.st_size]
        doc = {"token": self.token, "files": files}
        atomic_write_text(self.root / _MANIFEST, json.dumps(doc, ensure_ascii=False))

    def move_in(self) -> None:
        """Rename every copy into the project folder (one rename each, no copying)."""
        folder = self.project.folder
        for name in self.names:
            dest = folder / name
            if os.path.lexists(dest):
                raise DatasetError(f"{dest}: appeared in the project during the import")
            os.rename(self.root / _FILES / name, dest)


def sweep_import_staging(project: Project) -> list[str]:
    """Put right what killed imports left in ``project`` (see the module docstring).

    Safe to call at any time by the process that holds the project for writing:
    staging folders an import of this process is using are left alone.

    Returns
    -------
    list of str
        One sentence per staging folder dealt with (empty when none was left).
    """
    if getattr(project, "read_only", False):
        return []  # only the process that writes the project may undo or finish
    base = project.state_dir / STAGING_DIR_NAME
    try:
        entries = sorted(base.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    with _active_guard:
        active = set(_active)
    done: list[str] = []
    for root in entries:
        if root in active:
            continue
        manifest = _read_manifest(root)
        if manifest is not None and _committed(project, manifest):
            done.append(f"finished an import that was cut short after it committed ({root.name})")
        else:
            removed = _roll_back(project, root, manifest)
            done.append(
                f"undid an import that was cut short ({root.name}): "
                f"{removed} image(s) it had moved in were removed again"
            )
        _remove(root)
    for line in done:
        _log.warning("%s: %s", project.folder, line)
    return done


def _read_manifest(root: Path) -> dict[str, Any] | None:
    """The staging folder's manifest; None when there is none (nothing was moved in)."""
    try:
        doc = json.loads((root / _MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        # written atomically, so this is damage from outside: keep the files, say so
        _log.warning("%s: unreadable import manifest (%s); nothing is taken back out", root, exc)
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("files"), dict):
        return None
    return doc


def _committed(project: Project, manifest: dict[str, Any]) -> bool:
    """Whether the import of ``manifest`` stored its labels (its token is in the events)."""
    token = manifest.get("token")
    for name in manifest["files"]:
        try:
            events = project.history(name)
        except SegStudioError:
            return False  # never scanned: the import cannot have committed
        return any(
            e["action"] == "import_labels" and e["detail"].get("import") == token for e in events
        )
    return False


def _roll_back(project: Project, root: Path, manifest: dict[str, Any] | None) -> int:
    """Take the copies of an import that did not commit back out of the project folder."""
    if manifest is None:
        return 0
    removed = 0
    for name, ident in manifest["files"].items():
        if os.path.lexists(root / _FILES / name):
            continue  # never moved in
        dest = project.folder / name
        try:
            st = dest.lstat()
        except OSError:
            continue
        if [st.st_dev, st.st_ino, st.st_size] != list(ident):
            continue  # not our copy any more
        if _worked_on(project, name):
            _log.warning(
                "%s: kept %s: an import that was cut short copied it, but it has been worked on",
                project.folder,
                name,
            )
            continue
        try:
            dest.unlink()
        except OSError as exc:
            _log.warning("cannot remove %s again: %s", dest, exc)
            continue
        removed += 1
    if removed:
        try:
            project.scan()  # their rows (if a scan made any) are flagged missing
        except SegStudioError as exc:
            _log.warning("%s: cannot rescan after undoing an import: %s", project.folder, exc)
    return removed


def _worked_on(project: Project, name: str) -> bool:
    """Whether anyone stored labels or a prediction for ``name``, or set its status."""
    try:
        rec = project.record(name)
    except SegStudioError:
        return False
    return rec.has_labels or rec.has_prediction or rec.status.value != "unlabeled"


def _remove(root: Path) -> None:
    """Delete a staging folder: the manifest first, so a kill during the rest is harmless."""
    try:
        (root / _MANIFEST).unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        _log.warning("cannot delete %s: %s", root / _MANIFEST, exc)
        return
    shutil.rmtree(root, ignore_errors=True)
