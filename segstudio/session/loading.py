"""Opening image documents in workers, so that closing never waits for a file's decode.

Reading an image file only reads, but a huge one (a 12000 x 9000 JPEG) takes
seconds to decode and cannot be interrupted. The project's part of opening a
document comes after it: the stored labels and prediction, and setting aside
labels that no longer fit the image (a write). :class:`DocumentLoads` lets
the window close the project, or quit, without waiting for a decode: once
closed, a load whose read ends later returns None without touching the
project, and only a load already in the project's part is waited for.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from segstudio.io.images import read_image
from segstudio.io.project import Project
from segstudio.session.document import ImageDocument
from segstudio.session.saver import Saver


class DocumentLoads:
    """The image documents of one open project, opened in workers (:meth:`load`)."""

    def __init__(self, project: Project, saver: Saver) -> None:
        self.project = project
        self._saver = saver
        self._cond = threading.Condition()
        self._closed = False
        self._in_project = 0  # loads in the project's part (reading or writing it)

    @property
    def closed(self) -> bool:
        return self._closed

    def load(self, name: str) -> ImageDocument | None:
        """Open ``name`` (call it in a worker); None when :meth:`close` came first.

        Raises what :class:`~segstudio.session.document.ImageDocument` raises: an
        :class:`~segstudio.core.errors.ImageReadError` for a file that cannot be read.
        """
        with self._in_project_part() as open_:
            if not open_:
                return None
            path = self.project.image_path(name)
        image = read_image(path)  # the slow part; it only reads, and is never waited for
        with self._in_project_part() as open_:
            if not open_:
                return None
            return ImageDocument(self.project, name, self._saver, image=image)

    def close(self, timeout_s: float) -> bool:
        """No load touches the project from now on: wait (at most ``timeout_s``) for those
        in its part; a load still decoding a file is left to end by itself, and its
        result is None. False if one is still in the project's part."""
        with self._cond:
            self._closed = True
            return self._cond.wait_for(lambda: self._in_project == 0, timeout_s)

    @contextlib.contextmanager
    def _in_project_part(self) -> Iterator[bool]:
        """Enter the project's part of a load; yields False (and enters nothing) once closed."""
        with self._cond:
            entered = not self._closed
            if entered:
                self._in_project += 1
        try:
            yield entered
        finally:
            if entered:
                with self._cond:
                    self._in_project -= 1
                    self._cond.notify_all()
