"""A copy of a project's image records, kept current by the store's change events.

The window reads image records (status, confidence, whether labels exist) on
its own thread many times a second: for the image list, the enabled actions,
"is this image reviewed?". Asking the store each time can wait behind a
worker's write (a class migration holds the store for seconds). The
:class:`ProjectCache` holds the records in memory instead; every committed
write of the store (``Project.changed``) re-reads just the records it touched,
in the thread that wrote, and then says which changed (:attr:`changed`).
Reads from the cache never touch the database and never wait.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from psygnal import Signal

from segstudio.core.errors import SegStudioError
from segstudio.core.labelset import LabelSet
from segstudio.io.project import ImageRecord, ImageStatus, Project, StoreChange

log = logging.getLogger(__name__)

_LEAST_CONFIDENT = (ImageStatus.PREDICTED, ImageStatus.UNLABELED, ImageStatus.IN_PROGRESS)


class ProjectCache:
    """The records (and label set) of an open project, in memory.

    *Signal* ``changed(names)``: records were re-read, from the thread that
    wrote to the store; ``names`` is a frozenset of image names, or None when
    any record may have changed (a scan, an import, a class change). A window
    connects a thread-safe (queued) receiver.
    """

    changed = Signal(object)

    def __init__(self, project: Project) -> None:
        self.project = project
        self._write = threading.Lock()
        self._records: dict[str, ImageRecord] = {}
        self._labelset: LabelSet | None = None
        self._labelset_version = 0
        self._reload()
        project.changed.connect(self._on_change)

    def close(self) -> None:
        """Stop following the store (the project is being closed)."""
        self.project.changed.disconnect(self._on_change)

    # -- reads: never the database ------------------------------------------------------------

    def records(self) -> list[ImageRecord]:
        """Every image's record, in the store's order."""
        return list(self._records.values())

    def names(self) -> list[str]:
        return list(self._records)

    def record(self, name: str) -> ImageRecord | None:
        """The record of ``name``; None when the project has no such image (any more)."""
        return self._records.get(name)

    def status(self, name: str) -> ImageStatus | None:
        record = self._records.get(name)
        return None if record is None else record.status

    @property
    def labelset(self) -> LabelSet | None:
        return self._labelset

    @property
    def labelset_version(self) -> int:
        return self._labelset_version

    def least_confident(self, status_in: Iterable[ImageStatus] = _LEAST_CONFIDENT) -> str | None:
        """The predicted image of lowest mean confidence among those statuses (as the
        store's own :meth:`~segstudio.io.project.Project.least_confident` picks it)."""
        wanted = set(status_in)
        scored = [
            (r.confidence, r.name)
            for r in self._records.values()
            if r.status in wanted and r.has_prediction and r.confidence is not None
        ]
        return min(scored)[1] if scored else None

    # -- updates: in the writer's thread ------------------------------------------------------

    def _reload(self) -> None:
        records = {r.name: r for r in self.project.images()}
        labelset, version = self.project.labelset, self.project.labelset_version
        self._records, self._labelset, self._labelset_version = records, labelset, version

    def _on_change(self, change: StoreChange) -> None:
        if change.names is not None and not change.names:
            return  # a setting: no record changed
        try:
            with self._write:
                if change.names is None:
                    self._reload()
                else:
                    records = dict(self._records)  # copy, change, swap: readers see either
                    for name in change.names:
                        try:
                            records[name] = self.project.record(name)
                        except SegStudioError:  # the image is gone
                            records.pop(name, None)
                    self._records = records
        except SegStudioError as exc:  # closed meanwhile: the next open reads afresh
            log.warning("the image list could not follow a change: %s", exc)
            return
        self.changed.emit(change.names)
