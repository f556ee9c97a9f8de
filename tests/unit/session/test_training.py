"""session/training.py: fine-tune requests and the summary of a finished run."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from segstudio.session.training import (
    FineTuneRequest,
    NewArch,
    StartFrom,
    Validation,
    summary_lines,
)


def test_request_round_trips_through_json() -> None:
    request = FineTuneRequest(
        {"epochs": 2, "lr": 1e-4, "freeze_encoder": True},
        StartFrom.NEW,
        NewArch("unet", {"width": 0.25}),
        Validation.MARKED,
    )
    again = FineTuneRequest.from_json(json.loads(json.dumps(request.to_json())))
    assert again == request


def test_request_reads_a_run_interrupted_by_version_0_1() -> None:
    old = {
        "config": {"minutes": 5.0, "batch_size": 4},
        "start_from_active": True,
        "arch": ["segnet", {"width": 0.5}],
        "validation": "marked",
    }
    request = FineTuneRequest.from_json(old)
    assert request.start is StartFrom.ACTIVE
    assert request.validation is Validation.MARKED
    assert request.arch == NewArch("segnet", {"width": 0.5})
    assert dict(request.options) == {"minutes": 5.0, "batch_size": 4}


def test_an_unknown_mode_is_refused() -> None:
    data = FineTuneRequest().to_json()
    data["validation"] = "sometimes"
    with pytest.raises(ValueError, match="sometimes"):
        FineTuneRequest.from_json(data)


@dataclass
class _Result:
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    improved: bool | None
    verdict: str = ""


def test_summary_says_plainly_whether_the_model_improved() -> None:
    better = summary_lines(
        _Result({"mean_iou": 0.5, "images": 3}, {"mean_iou": 0.6, "images": 3}, True)
    )
    assert better[-1] == "improved: yes, mean IoU +0.1000"
    worse = summary_lines(
        _Result({"mean_iou": 0.5, "images": 3}, {"mean_iou": 0.4, "images": 3}, False)
    )
    assert worse[-1].startswith("improved: no, mean IoU fell by 0.1000")
    unknown = summary_lines(_Result(None, None, None))
    assert unknown == ["improved: unknown, there are no validation images to score it on"]
    tie = summary_lines(
        _Result({"mean_iou": 0.5, "images": 3}, {"mean_iou": 0.5, "images": 3}, None, "too close")
    )
    assert tie[-1] == "improved: no verdict, too close"
