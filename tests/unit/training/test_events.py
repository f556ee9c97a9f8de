"""Progress reports: kinds are enums that compare equal to their plain strings."""

from __future__ import annotations

import pytest

from segstudio.training.events import KINDS, ProgressKind, TrainProgress


def test_kind_is_an_enum_and_a_string() -> None:
    p = TrainProgress("step", step=3)
    assert p.kind is ProgressKind.STEP and p.kind == "step"
    assert TrainProgress(ProgressKind.MESSAGE, message="hi").kind == "message"
    assert KINDS == ("step", "validation", "checkpoint", "message")


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="fit"):
        TrainProgress("fit")
