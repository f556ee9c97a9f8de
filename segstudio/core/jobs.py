"""Long jobs as generators: one progress report type and one driver for all of them.

Every long job in SegStudio (predict all, export, import, quick training, a
class migration) is a generator that yields :class:`Progress` reports and
returns its result. Each ``yield`` is a point where progress is shown and
cancel takes effect. The window runs such a generator in a worker thread
through :func:`relay`; the command line runs it in the foreground through
:func:`drive`. Fine-tuning yields richer reports of its own
(:class:`segstudio.training.events.TrainProgress`) through the same two
drivers.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
P = TypeVar("P")


@dataclass(frozen=True)
class Progress:
    """One step of a long job: ``done`` of ``total``, the item just finished.

    ``message`` says what was done to it (e.g. "copied"); ``error`` is set when
    that one item failed and the job went on without it.
    """

    done: int
    total: int
    name: str = ""
    message: str = ""
    error: str | None = None


def relay(
    gen: Generator[P, None, T], cancel: Callable[[], bool] | None = None
) -> Generator[P, None, T | None]:
    """Yield ``gen``'s reports until it ends (returning its value) or ``cancel()`` is
    true after a report (returning None).

    ``gen`` is closed here, in the thread that ran it, also on an error, so its
    own clean-up (an export's temporary folder, a training's checkpoint) runs
    at once.
    """
    try:
        while True:
            try:
                report = next(gen)
            except StopIteration as stop:
                return stop.value
            yield report
            if cancel is not None and cancel():
                return None
    finally:
        gen.close()


def drive(
    gen: Generator[P, None, T],
    on_report: Callable[[P], object] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> T | None:
    """Run ``gen`` to its end in this thread and return its value (None when cancelled);
    ``on_report`` sees each report."""
    steps = relay(gen, cancel)
    while True:
        try:
            report = next(steps)
        except StopIteration as stop:
            return stop.value
        if on_report is not None:
            on_report(report)
