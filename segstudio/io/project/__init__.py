"""The project store: a folder of images and its ``.segstudio`` state folder.

One module per job: :mod:`~segstudio.io.project.store` (:class:`Project`,
opening, scanning, queries), :mod:`~segstudio.io.project.db` (the SQLite
layer), :mod:`~segstudio.io.project.records` (image status and records),
:mod:`~segstudio.io.project.files` (label and prediction files),
:mod:`~segstudio.io.project.aside` (labels kept aside, never deleted),
:mod:`~segstudio.io.project.migration` (label set changes and class
migration), :mod:`~segstudio.io.project.settings` (``settings.json``),
:mod:`~segstudio.io.project.models` (the model registry and the active model),
:mod:`~segstudio.io.project.lock` (one writer per project),
:mod:`~segstudio.io.project.leftovers` (temporary files of killed writes)
and :mod:`~segstudio.io.project.recent` (recently opened folders).
"""

from __future__ import annotations

from segstudio.io.project.db import SCHEMA_VERSION, StoreChange
from segstudio.io.project.lock import LockHolder, ProjectLockedError
from segstudio.io.project.models import ModelChoice, ModelKind, ModelSummary
from segstudio.io.project.recent import (
    CONFIG_DIR_ENV,
    MAX_RECENT_PROJECTS,
    add_recent_project,
    recent_projects,
)
from segstudio.io.project.records import ImageRecord, ImageStatus
from segstudio.io.project.store import STATE_DIR_NAME, Project

__all__ = [
    "CONFIG_DIR_ENV",
    "MAX_RECENT_PROJECTS",
    "SCHEMA_VERSION",
    "STATE_DIR_NAME",
    "ImageRecord",
    "ImageStatus",
    "LockHolder",
    "ModelChoice",
    "ModelKind",
    "ModelSummary",
    "Project",
    "ProjectLockedError",
    "StoreChange",
    "add_recent_project",
    "recent_projects",
]
