"""session/loading.py: closing never waits for a file's decode, and always for the project's
part of a load (its labels, setting aside labels that no longer fit: a write)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import segstudio.session.loading as loading
from segstudio.io.project import Project
from segstudio.session.document import ImageDocument, Saver
from segstudio.session.loading import DocumentLoads


@pytest.fixture
def saver() -> Iterator[Saver]:
    saver = Saver()
    yield saver
    saver.shutdown()


def _in_thread(func, *args) -> tuple[threading.Thread, list[object]]:
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(func(*args)))
    thread.start()
    return thread, result


def test_a_load_opens_the_document(project: Project, saver: Saver) -> None:
    doc = DocumentLoads(project, saver).load("one.png")
    assert isinstance(doc, ImageDocument) and doc.labels.shape == (40, 60)


def test_closing_does_not_wait_for_a_read_and_the_load_then_touches_nothing(
    project: Project, saver: Saver, monkeypatch: pytest.MonkeyPatch
) -> None:
    reading, release = threading.Event(), threading.Event()
    real_read = loading.read_image

    def slow_read(path: Path):  # a huge JPEG's decode, held until the test lets go
        reading.set()
        release.wait(30)
        return real_read(path)

    built: list[str] = []
    monkeypatch.setattr(loading, "read_image", slow_read)
    monkeypatch.setattr(loading, "ImageDocument", lambda *a, **k: built.append("doc"))
    loads = DocumentLoads(project, saver)
    thread, result = _in_thread(loads.load, "one.png")
    assert reading.wait(10)
    assert loads.close(timeout_s=30)  # at once: the read is not waited for
    assert thread.is_alive() and loads.closed
    project.close()  # the project goes while the file is still being read
    release.set()
    thread.join(10)
    assert result == [None] and built == []  # its result is dropped, the project untouched


def test_closing_waits_for_a_load_in_the_project_part(
    project: Project, saver: Saver, monkeypatch: pytest.MonkeyPatch
) -> None:
    inside, release = threading.Event(), threading.Event()
    real_doc = loading.ImageDocument

    def slow_doc(*args, **kwargs):  # reading labels, setting stale ones aside: a write
        inside.set()
        release.wait(30)
        return real_doc(*args, **kwargs)

    monkeypatch.setattr(loading, "ImageDocument", slow_doc)
    loads = DocumentLoads(project, saver)
    thread, result = _in_thread(loads.load, "one.png")
    assert inside.wait(10)
    assert not loads.close(timeout_s=0.05)  # still in the project's part: waited for
    release.set()
    assert loads.close(timeout_s=30)
    thread.join(10)
    assert isinstance(result[0], ImageDocument)
    assert loads.load("one.png") is None  # closed: no more loads
