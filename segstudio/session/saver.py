"""Writing label maps on one background thread, in order, never dropping one.

The open image's document copies its labels on the window's thread (cheap)
and hands them to the :class:`Saver`, which writes the PNG on its own thread:
a big image never stalls the window and no two saves of one image race. A
write that fails is kept and written again; one made stale by a class
migration is renumbered with the migration's lookup table, or kept aside.
Small writes that must not hold up the window (the view settings) go through
the same thread with :meth:`Saver.call`, after the saves queued before them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from segstudio.core.edit import apply_lut
from segstudio.core.errors import SegStudioError
from segstudio.io.project import ImageStatus, Project

__all__ = ["Saver"]

log = logging.getLogger(__name__)


class Saver:
    """Writes label maps on one background thread, in submission order.

    A write that fails (disk full, permission denied) is not lost: its labels
    are kept in :attr:`failed` and written again by :meth:`retry_failed`, and
    ``on_error(name, message)`` is called (from the saver thread) so the
    window can tell the user.
    """

    def __init__(self, on_error: Callable[[str, str], None] | None = None) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="segstudio-save")
        self._lock = threading.Lock()
        self._pending: list[Future[None]] = []
        self.failed: dict[str, tuple[Project, np.ndarray, int | None, bool]] = {}
        self.on_error = on_error

    def submit(
        self,
        project: Project,
        name: str,
        labels: np.ndarray,
        version: int | None = None,
        *,
        reopen: bool = False,
    ) -> Future[None]:
        """Write ``labels`` (numbered for label-set ``version``); ``reopen`` first sets a
        reviewed image back to "in progress" (it was edited)."""

        def write() -> None:
            with self._lock:  # a failed save may still owe the status change
                old = self.failed.get(name)
            owed = reopen or (old is not None and old[3])
            try:
                if owed:
                    project.set_status(name, ImageStatus.IN_PROGRESS)
                _save_current(project, name, labels, version)
            except (SegStudioError, OSError) as exc:
                with self._lock:
                    self.failed[name] = (project, labels, version, owed)
                log.error("saving labels of %s failed: %s", name, exc)  # noqa: TRY400 - expected
                if self.on_error is not None:
                    self.on_error(name, str(exc))
                raise
            with self._lock:
                self.failed.pop(name, None)

        future = self._pool.submit(write)
        with self._lock:
            self._pending = [f for f in self._pending if not f.done()] + [future]
        return future

    def retry_failed(self) -> None:
        """Queue again every write that failed (newer saves of an image replace it)."""
        with self._lock:
            failed = dict(self.failed)
        for name, (project, labels, version, reopen) in failed.items():
            self.submit(project, name, labels, version, reopen=reopen)

    def call(self, func: Callable[[], None]) -> Future[None]:
        """Run ``func`` on the saver's thread, after the saves queued so far (settings:
        small writes that must not hold up the window); its errors are logged."""

        def run() -> None:
            try:
                func()
            except (SegStudioError, OSError, TypeError) as exc:
                log.warning("a background write failed: %s", exc)

        future = self._pool.submit(run)
        with self._lock:
            self._pending = [f for f in self._pending if not f.done()] + [future]
        return future

    def wait(self, timeout: float | None = None) -> None:
        """Block until every submitted save has finished."""
        with self._lock:
            pending = list(self._pending)
        for future in pending:
            future.exception(timeout=timeout)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)


def _save_current(project: Project, name: str, labels: np.ndarray, version: int | None) -> None:
    """Save ``labels`` numbered for label-set ``version``, renumbered if the project moved on.

    A class migration between the copy and the write (by this process or, without
    the write lock, another) would make the save stale: the labels go through the
    migration's recorded lookup table instead, or, without one, are kept aside in
    the project, and the error says where. Never are they dropped.
    """
    if version is not None:
        current = project.labelset_version
        if current != version:
            lut = project.migration_lut(version)
            if lut is None:
                path = project.keep_labels_aside(
                    name,
                    labels,
                    f"the classes were migrated from version {version} to {current} with no "
                    "recorded way to renumber these labels",
                    labelset_version=version,
                )
                raise SegStudioError(
                    f"the classes were changed while these labels were being saved, and they "
                    f"cannot be renumbered; they were kept in {path}"
                )
            labels, version = apply_lut(labels, lut), current
    project.save_labels(name, labels, labelset_version=version)
