"""The job runner and the side workers: one job at a time, told apart by kind, and waited
for by an event loop that the worker's end (or a timeout) quits."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMainWindow

from segstudio.core.jobs import Progress
from segstudio.gui.jobs import JobKind, JobRunner, WorkerSet


@pytest.fixture
def runner(qtbot) -> Iterator[JobRunner]:
    window = QMainWindow()
    qtbot.addWidget(window)
    yield JobRunner(window, window.statusBar())


def _counting(n: int, gate: threading.Event) -> Iterator[Progress]:
    for i in range(1, n + 1):
        gate.wait(10)
        yield Progress(i, n, f"item{i}")
    return n


def test_a_job_reports_progress_and_refuses_a_second(runner: JobRunner, qtbot) -> None:
    gate = threading.Event()
    reports: list[Progress] = []
    returned: list[int] = []
    ended: list[JobKind] = []
    runner.finished.connect(ended.append)
    assert runner.start(
        JobKind.EXPORT, _counting, 3, gate, on_report=reports.append, on_return=returned.append
    )
    assert runner.running and runner.kind is JobKind.EXPORT
    assert not runner.progress.isHidden() and not runner.cancel_button.isHidden()
    assert not runner.start(JobKind.IMPORT, _counting, 1, gate)  # one job at a time
    assert runner.kind is JobKind.EXPORT
    assert not runner.wait(0.05)  # still held at the gate: the wait times out
    gate.set()
    assert runner.wait(10)
    assert not runner.running and runner.kind is None
    assert [p.done for p in reports] == [1, 2, 3] and returned == [3]
    assert ended == [JobKind.EXPORT]
    assert runner.progress.maximum() == 3 and runner.progress.value() == 3
    assert runner.progress.isHidden() and runner.cancel_button.isHidden()


def test_cancel_sets_the_jobs_event_and_drops_the_follow_up(runner: JobRunner) -> None:
    cancel, gate = threading.Event(), threading.Event()
    follow_up: list[str] = []

    def job() -> Iterator[Progress]:
        while not cancel.is_set():
            gate.set()
            yield Progress(0, 0)
            cancel.wait(0.01)

    assert runner.start(JobKind.FINE_TUNE, job, cancel=cancel)
    runner.then(lambda: follow_up.append("predict all"))
    assert gate.wait(10)
    runner.cancel()
    assert cancel.is_set()
    assert runner.wait(10)
    assert follow_up == []  # cancelling drops what was to follow


def test_worker_set_keeps_workers_until_they_end(qtbot) -> None:
    workers = WorkerSet()
    gate = threading.Event()
    results: list[int] = []
    workers.start(lambda: gate.wait(10) and 7, returned=results.append)
    workers.start(lambda: 8, returned=results.append)
    assert workers.busy
    assert not workers.wait(0.05)  # one is still held at the gate
    gate.set()
    assert workers.wait(10)
    assert not workers.busy and sorted(results) == [7, 8]


def test_a_cancelled_job_says_cancelled_and_a_failed_one_failed(
    runner: JobRunner, qtbot, monkeypatch
) -> None:
    from PySide6.QtWidgets import QMessageBox

    cancel = threading.Event()
    started = threading.Event()

    def job() -> Iterator[Progress]:
        while not cancel.is_set():
            started.set()
            yield Progress(0, 60)
            cancel.wait(0.01)

    assert runner.start(JobKind.PREDICT_ALL, job, cancel=cancel)
    assert started.wait(10)
    qtbot.mouseClick(runner.cancel_button, Qt.MouseButton.LeftButton)
    assert runner.wait(10)
    status = runner.parent().statusBar()
    assert status.currentMessage() == "Predict all cancelled"
    assert runner.start(JobKind.EXPORT, lambda: 7, on_return=lambda _r: None)
    assert runner.wait(10)
    assert status.currentMessage() == "Export finished"
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a: shown.append(a[2]))

    def broken() -> None:
        raise ValueError("disk on fire")

    assert runner.start(JobKind.EXPORT, broken)
    assert runner.wait(10)
    assert runner.failed and status.currentMessage() == "Export failed: ValueError: disk on fire"
    assert shown == ["Export failed: ValueError: disk on fire"]  # the box says the same


def test_the_progress_bar_has_room_for_its_text(runner: JobRunner) -> None:
    bar = runner.progress
    text = "Predict all 55/60"
    assert bar.minimumWidth() > bar.fontMetrics().horizontalAdvance(text)


def test_closing_cancels_and_a_job_that_ends_anyway_shows_no_dialog(
    runner: JobRunner, qtbot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Quitting during an import past its point of no return: the window waits for it, but
    neither its result (an information box) nor an error box holds up the closing."""
    cancel, started = threading.Event(), threading.Event()
    shown: list[str] = []
    monkeypatch.setattr("segstudio.gui.jobs.QMessageBox.warning", lambda *a: shown.append(a[2]))

    def committing() -> Iterator[Progress]:
        started.set()
        yield Progress(1, 2, "")
        cancel.wait(10)  # asked to stop, but it finishes its commit
        return "committed"

    returned: list[str] = []
    assert runner.start(JobKind.IMPORT, committing, on_return=returned.append, cancel=cancel)
    assert started.wait(10)
    assert runner.close(10)
    assert cancel.is_set() and not runner.running
    assert returned == [] and shown == []
    # the next job (another project) reports as usual again
    assert runner.start(JobKind.EXPORT, lambda: "done", on_return=returned.append)
    assert runner.wait(10) and returned == ["done"]

    def failing() -> None:
        started.wait(10)
        raise OSError("disk gone")

    assert runner.start(JobKind.EXPORT, failing)
    assert runner.close(10) and shown == []  # closing: logged, no dialog
