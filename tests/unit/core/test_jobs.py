"""core/jobs.py: the one progress type and the one generator driver."""

from __future__ import annotations

from collections.abc import Generator

import pytest

from segstudio.core.jobs import Progress, drive, relay


def _job(n: int, log: list[str]) -> Generator[Progress, None, str]:
    try:
        for i in range(1, n + 1):
            yield Progress(i, n, f"item{i}")
        return "report"
    finally:
        log.append("closed")


def test_drive_returns_the_value_and_shows_every_report() -> None:
    log: list[str] = []
    seen: list[int] = []
    assert drive(_job(3, log), lambda p: seen.append(p.done)) == "report"
    assert seen == [1, 2, 3]
    assert log == ["closed"]


def test_cancel_stops_after_the_report_and_closes_the_job() -> None:
    log: list[str] = []
    seen: list[int] = []
    result = drive(_job(10, log), lambda p: seen.append(p.done), cancel=lambda: len(seen) >= 2)
    assert result is None
    assert seen == [1, 2]
    assert log == ["closed"]  # its clean-up ran at once, not at garbage collection


def test_relay_passes_reports_and_value_through_yield_from() -> None:
    log: list[str] = []

    def outer() -> Generator[Progress, None, str | None]:
        value = yield from relay(_job(2, log))
        return f"got {value}"

    assert drive(outer()) == "got report"


def test_an_error_inside_the_job_reaches_the_caller_and_the_job_is_closed() -> None:
    log: list[str] = []

    def failing() -> Generator[Progress, None, None]:
        try:
            yield Progress(1, 2)
            raise OSError("disk full")
        finally:
            log.append("closed")

    with pytest.raises(OSError, match="disk full"):
        drive(failing())
    assert log == ["closed"]


def test_progress_defaults() -> None:
    p = Progress(1, 4)
    assert (p.name, p.message, p.error) == ("", "", None)
