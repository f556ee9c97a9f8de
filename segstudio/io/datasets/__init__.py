"""Dataset export and import: a project's labels in the formats training code reads.

:func:`export_dataset` writes one of :data:`FORMATS` atomically (a temporary
folder renamed into place; cancel or failure leaves ``out`` untouched);
:func:`import_dataset` reads one of :data:`IMPORT_FORMATS` all or nothing.
Both are generators that yield :class:`Progress` after every file and return
their report (``StopIteration.value``); drive them to the end with
:func:`segstudio.core.jobs.drive` (the window: :func:`~segstudio.core.jobs.relay`).

Modules
-------
export
    The export driver: options, checks before writing, the split, the atomic
    folder replacement, the README, the report.
imports
    The import driver: validation of every mask first, the mapping onto the
    project's classes, copying images, storing labels in one transaction.
staging
    The import's staged copies and :func:`sweep_import_staging`, which undoes
    (or finishes) an import a kill cut short: all or nothing under kill -9.
swap
    Putting a finished export in place without ever leaving ``out`` missing,
    and :func:`recover_export` for what a killed export left beside it.
index, camvid, voc, cityscapes, coco
    One format each: its writer and its reader.
rgb, cvat
    Formats that are only read.
layouts
    Where a dataset folder keeps its images, label maps, splits and classes;
    also used by the trainer and ``segstudio eval``.
common
    What the drivers and formats share: the writer and reader protocols, file helpers.
"""

from __future__ import annotations

from segstudio.io.datasets.cityscapes import CITYSCAPES_LABEL_IDS
from segstudio.io.datasets.export import FORMATS, ExportOptions, ExportReport, export_dataset
from segstudio.io.datasets.imports import IMPORT_FORMATS, ImportReport, import_dataset
from segstudio.io.datasets.staging import sweep_import_staging
from segstudio.io.datasets.swap import recover_export

__all__ = [
    "CITYSCAPES_LABEL_IDS",
    "FORMATS",
    "IMPORT_FORMATS",
    "ExportOptions",
    "ExportReport",
    "ImportReport",
    "export_dataset",
    "import_dataset",
    "recover_export",
    "sweep_import_staging",
]
