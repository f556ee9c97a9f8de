"""The Qt binding itself must not corrupt Python objects (PySide6 6.12.0 did)."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal


class _Emitter(QObject):
    moved = Signal(int, int)


def test_signal_emit_keeps_bool_refcounts() -> None:
    """PySide6 6.12.0 dropped a reference to a bool at each emit; on Python 3.11,
    where bools are not immortal, the app aborted after a few thousand mouse moves."""
    emitter = _Emitter()
    got = []
    emitter.moved.connect(lambda x, y: got.append(x))
    before = sys.getrefcount(True), sys.getrefcount(False)
    for i in range(200):
        emitter.moved.emit(i, i)
    after = sys.getrefcount(True), sys.getrefcount(False)
    assert len(got) == 200
    assert abs(after[0] - before[0]) < 50 and abs(after[1] - before[1]) < 50
