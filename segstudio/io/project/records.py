"""What the project knows about each image: its status and its record.

:class:`ImageStatus` is where an image stands in the labelling loop and
:class:`ImageRecord` the read-only view of its row that callers get; the
private :class:`_Row` holds the columns the write paths need. The SQL that
reads a record (:data:`_RECORD_COLUMNS`) sits beside :func:`_record`, which
turns its result into an :class:`ImageRecord`, so the two cannot drift apart.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["ImageRecord", "ImageStatus"]


class ImageStatus(enum.StrEnum):
    """Where an image stands in the labelling loop."""

    UNLABELED = "unlabeled"
    """Nobody has labelled it and no model has predicted it."""
    PREDICTED = "predicted"
    """Only a model prediction exists."""
    IN_PROGRESS = "in_progress"
    """A person has saved labels for it."""
    REVIEWED = "reviewed"
    """A person has confirmed its labels as finished."""


_DEFAULT_LEAST_CONFIDENT: Final[tuple[ImageStatus, ...]] = (
    ImageStatus.PREDICTED,
    ImageStatus.UNLABELED,
    ImageStatus.IN_PROGRESS,
)


@dataclass(frozen=True)
class ImageRecord:
    """What the project knows about one image.

    Attributes
    ----------
    name : str
        File name of the image, relative to the project folder.
    status : ImageStatus
        Where it stands in the labelling loop.
    updated_at : float or None
        When a person last saved labels or set the status (seconds since the
        epoch), None if never.
    updated_by : str or None
        Who that was.
    confidence : float or None
        Mean confidence (0..1) of its stored prediction, None without one.
    has_labels : bool
        Whether human labels are stored.
    has_prediction : bool
        Whether a model prediction is stored.
    """

    name: str
    status: ImageStatus
    updated_at: float | None
    updated_by: str | None
    confidence: float | None
    has_labels: bool
    has_prediction: bool


_RECORD_COLUMNS = (
    "name, status, updated_at, updated_by, confidence, "
    "label_file IS NOT NULL, pred_file IS NOT NULL"
)


@dataclass(frozen=True)
class _Row:
    """The columns of an image row that the write paths need."""

    id: int
    name: str
    status: ImageStatus
    label_file: str | None
    pred_file: str | None
    conf_file: str | None


def _record(row: tuple[Any, ...]) -> ImageRecord:
    name, status, updated_at, updated_by, confidence, has_labels, has_prediction = row
    return ImageRecord(
        name=name,
        status=ImageStatus(status),
        updated_at=updated_at,
        updated_by=updated_by,
        confidence=confidence,
        has_labels=bool(has_labels),
        has_prediction=bool(has_prediction),
    )
