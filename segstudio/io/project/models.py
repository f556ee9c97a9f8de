"""The model registry of a project: which models it has, and which one it uses.

A project's models are the files of ``.segstudio/models/``:
:meth:`_ModelsMixin.models` lists them, oldest first. Torch-free, like all of
:mod:`segstudio.io`: a model's summary (architecture, classes, provenance with
its lineage, metrics) is read from the JSON metadata in its safetensors header
(see :mod:`segstudio.model.files`); the weights are never read. A model is
fully validated only when it is loaded.

The active model is a choice stored in the project's settings under
:data:`ACTIVE_MODEL_SETTING`, never a guess (no file time, no "newest"):

- ``{"kind": "bundled"}``: the model shipped with SegStudio, wherever this
  installation keeps it;
- ``{"kind": "project", "path": "model-20250101-120000.safetensors"}``: a file
  of ``.segstudio/models/``, relative to that folder, so a project folder that
  is moved or copied keeps its choice;
- ``{"kind": "file", "path": "/abs/path/model.safetensors"}``: any other file.

A choice whose file has gone resolves to None; the choice itself stays
readable so the caller can say what is missing. Nothing here falls back to
another model.
"""

from __future__ import annotations

import datetime as _dt
import enum
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from segstudio.core.bundled import bundled_model_path
from segstudio.core.errors import LabelSetError, ModelFileError
from segstudio.core.labelset import LabelSet
from segstudio.core.safetensors_header import read_safetensors_header
from segstudio.io.project.settings import _SettingsMixin

__all__ = [
    "ACTIVE_MODEL_SETTING",
    "ModelChoice",
    "ModelKind",
    "ModelSummary",
    "Teacher",
    "list_models",
    "read_metadata",
    "read_summary",
    "teacher_of",
]

_log = logging.getLogger(__name__)

ACTIVE_MODEL_SETTING: Final[str] = "active_model"
"""The project setting that holds the active model's :class:`ModelChoice`."""

MODEL_SUFFIX: Final[str] = ".safetensors"
#: The key of SegStudio's JSON document in a safetensors header's ``__metadata__``.
_METADATA_KEY: Final[str] = "segstudio"
_FORMAT: Final[str] = "segstudio.model"


class ModelKind(enum.StrEnum):
    """Where a model file lives, which decides how a choice of it is stored."""

    BUNDLED = "bundled"  #: shipped with SegStudio
    PROJECT = "project"  #: in the project's ``.segstudio/models/``
    FILE = "file"  #: anywhere else


@dataclass(frozen=True)
class ModelChoice:
    """A stored choice of model.

    Attributes
    ----------
    kind : ModelKind
        Where the model lives.
    path : str
        For ``PROJECT``, the file's path relative to the models folder (POSIX
        separators); for ``FILE``, its absolute path; empty for ``BUNDLED``.
    """

    kind: ModelKind
    path: str = ""

    @classmethod
    def for_path(cls, path: str | Path, models_dir: Path) -> ModelChoice:
        """The choice of the model file ``path`` for a project whose models are in ``models_dir``.

        The bundled model's file is stored as the bundled model, a file in
        ``models_dir`` relative to it, any other file by its absolute path.
        """
        target = Path(path).expanduser().resolve()
        bundled = bundled_model_path()
        if bundled is not None and bundled.resolve() == target:
            return cls(ModelKind.BUNDLED)
        if target.is_relative_to(models_dir.resolve()):
            return cls(ModelKind.PROJECT, target.relative_to(models_dir.resolve()).as_posix())
        return cls(ModelKind.FILE, str(target))

    @classmethod
    def from_setting(cls, value: Any, models_dir: Path) -> ModelChoice | None:
        """Read a stored choice; None when nothing (or nothing readable) is stored.

        A plain path string, as earlier versions stored, is read as
        :meth:`for_path` would store it; one that pointed into the models folder
        of a project that has since moved is found in ``models_dir``.
        """
        if value is None:
            return None
        if isinstance(value, str) and value:
            old = Path(value)
            moved = (
                not old.exists()
                and old.parent.name == models_dir.name
                and old.parent.parent.name == models_dir.parent.name
                and (models_dir / old.name).is_file()
            )
            return cls(ModelKind.PROJECT, old.name) if moved else cls.for_path(old, models_dir)
        if isinstance(value, Mapping):
            stored_kind = value.get("kind")
            try:
                kind = ModelKind(stored_kind) if isinstance(stored_kind, str) else None
            except ValueError:
                kind = None
            path = value.get("path", "")
            if kind is ModelKind.BUNDLED:
                return cls(kind)
            if kind is not None and isinstance(path, str) and path:
                return cls(kind, path)
        _log.warning("ignoring an unreadable active-model setting: %r", value)
        return None

    def to_setting(self) -> dict[str, str]:
        """The JSON-ready form stored in the project's settings."""
        if self.kind is ModelKind.BUNDLED:
            return {"kind": self.kind.value}
        return {"kind": self.kind.value, "path": self.path}

    def expected_path(self, models_dir: Path) -> Path | None:
        """Where the chosen file should be (it may be missing); None for the
        bundled model in a build without one."""
        if self.kind is ModelKind.BUNDLED:
            return bundled_model_path()
        if self.kind is ModelKind.PROJECT:
            return models_dir / self.path
        return Path(self.path)

    def resolve(self, models_dir: Path) -> Path | None:
        """The chosen model's file, or None when it does not exist (any more)."""
        path = self.expected_path(models_dir)
        return path if path is not None and path.is_file() else None

    @property
    def label(self) -> str:
        """How the window names the choice."""
        if self.kind is ModelKind.BUNDLED:
            return "the bundled model"
        return Path(self.path).name


@dataclass(frozen=True)
class Teacher:
    """The model a distilled model learnt from, as its lineage records it (fields
    the file lacks, or holds in another type, are None)."""

    arch: str | None
    width: float | None
    mean_iou: float | None
    path: str | None
    weight: float | None


def teacher_of(provenance: Mapping[str, Any]) -> Teacher | None:
    """The teacher a model's provenance records, or None when it was not distilled."""
    teacher = provenance.get("teacher")
    if not isinstance(teacher, Mapping):
        return None

    def mapping(value: Any) -> Mapping[str, Any]:
        return value if isinstance(value, Mapping) else {}

    arch = mapping(teacher.get("arch"))
    params = mapping(arch.get("params"))

    def number(value: Any) -> float | None:
        return float(value) if isinstance(value, int | float) else None

    def text(value: Any) -> str | None:
        return value if isinstance(value, str) and value else None

    return Teacher(
        arch=text(arch.get("name")),
        width=number(params.get("width")),
        mean_iou=number(teacher.get("mean_iou")),
        path=text(teacher.get("path")),
        weight=number(teacher.get("distill_weight")),
    )


@dataclass(frozen=True)
class ModelSummary:
    """What a model file's header says about it: enough for a model list.

    Attributes
    ----------
    path : Path
        The model file.
    kind : ModelKind
        Where it lives.
    created : datetime.datetime
        When it was made (its provenance), else the file's modification time;
        timezone-aware.
    arch : str or None
        The architecture's name.
    labelset : LabelSet or None
        The classes the model predicts.
    provenance, metrics : Mapping
        The file's lineage and validation metrics, as stored.
    error : str or None
        Why the header could not be read (then the fields above are empty).
    """

    path: Path
    kind: ModelKind
    created: _dt.datetime
    arch: str | None = None
    labelset: LabelSet | None = None
    provenance: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def name(self) -> str:
        """The file's name."""
        return self.path.name

    @property
    def mean_iou(self) -> float | None:
        """The validation mIoU the model was stored with, if any."""
        value = self.metrics.get("mean_iou")
        return float(value) if isinstance(value, int | float) else None

    @property
    def parent(self) -> Path | None:
        """The model this one was trained from (its lineage), if any."""
        parent = self.provenance.get("parent")
        path = parent.get("path") if isinstance(parent, Mapping) else None
        return Path(path) if isinstance(path, str) and path else None

    def misfit(self, labelset: LabelSet | None) -> str | None:
        """Why this model cannot predict for a project with ``labelset``; None when it can.

        Classes are compared by name in order, ignoring case, as
        :meth:`LabelSet.same_names` does: colours are the project's own.
        """
        if self.error is not None:
            return self.error
        if self.labelset is None:
            return "the model names no classes"
        if labelset is None or self.labelset.same_names(labelset):
            return None
        have = [n.casefold() for n in self.labelset.names]
        want = [n.casefold() for n in labelset.names]
        if len(have) != len(want):
            return f"{len(have)} classes; the project has {len(want)}"
        first = next(i for i, (a, b) in enumerate(zip(have, want, strict=True)) if a != b)
        mine, theirs = self.labelset.names[first], labelset.names[first]
        return f"class {first} is “{mine}”; the project's is “{theirs}”"


def read_metadata(path: str | Path) -> dict[str, Any]:
    """Read the SegStudio metadata document of a model file, without its weights.

    Parameters
    ----------
    path : str or Path
        A safetensors model file.

    Returns
    -------
    dict
        The ``segstudio`` JSON document: ``arch``, ``labelset``,
        ``provenance``, ``metrics``, ...

    Raises
    ------
    ModelFileError
        The file is missing, unreadable, not safetensors, or not a SegStudio model.
    """
    path = Path(path)
    doc = read_safetensors_header(path, what="model").document(_METADATA_KEY)
    if doc is None:
        raise ModelFileError(f"{path}: not a SegStudio model (no readable metadata)")
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
        raise ModelFileError(f"{path}: not a SegStudio model")
    return doc


def read_summary(path: str | Path, kind: ModelKind = ModelKind.FILE) -> ModelSummary:
    """Summarise a model file for a model list; a bad file gives a summary with ``error`` set."""
    path = Path(path)
    try:
        doc = read_metadata(path)
    except ModelFileError as exc:
        return ModelSummary(path, kind, _file_time(path), error=str(exc).removeprefix(f"{path}: "))
    provenance = doc.get("provenance")
    provenance = provenance if isinstance(provenance, dict) else {}
    metrics = doc.get("metrics")
    arch = doc.get("arch")
    try:
        labelset = LabelSet.from_dict(doc.get("labelset"))
    except (LabelSetError, TypeError, AttributeError) as exc:
        return ModelSummary(path, kind, _file_time(path), error=f"bad class list ({exc})")
    return ModelSummary(
        path,
        kind,
        _created(provenance.get("created")) or _file_time(path),
        arch=arch.get("name") if isinstance(arch, dict) else None,
        labelset=labelset,
        provenance=provenance,
        metrics=metrics if isinstance(metrics, dict) else {},
    )


def list_models(models_dir: Path) -> list[ModelSummary]:
    """Every model file in ``models_dir`` (a project's), oldest first.

    Hidden files (unfinished atomic writes) are left out; unreadable models
    are listed with their ``error``.
    """
    if not models_dir.is_dir():
        return []
    files = [
        p
        for p in models_dir.iterdir()
        if p.suffix == MODEL_SUFFIX and not p.name.startswith(".") and p.is_file()
    ]
    summaries = [read_summary(p, ModelKind.PROJECT) for p in files]
    return sorted(summaries, key=lambda s: (s.created, s.name))


class _ModelsMixin(_SettingsMixin):
    """The model-registry methods of :class:`~segstudio.io.project.Project`."""

    def models(self) -> list[ModelSummary]:
        """The project's model files (``.segstudio/models``), oldest first.

        Each is summarised from its header (architecture, classes, lineage,
        metrics) without reading weights; see :mod:`segstudio.io.project.models`.
        """
        return list_models(self._models_dir)

    def model_choice(self) -> ModelChoice | None:
        """The stored choice of active model, whether or not its file still exists.

        None when no model was ever chosen for this project.
        """
        return ModelChoice.from_setting(self.get_setting(ACTIVE_MODEL_SETTING), self._models_dir)

    def active_model(self) -> Path | None:
        """The active model's file.

        None when no model is chosen, and also when the chosen file has gone:
        :meth:`model_choice` then still names it, so the caller can say what is
        missing. There is never a fallback to another model.
        """
        choice = self.model_choice()
        return None if choice is None else choice.resolve(self._models_dir)

    def set_active_model(
        self, path: str | os.PathLike[str] | None, *, bundled: bool = False
    ) -> ModelChoice | None:
        """Store the model this project uses; the stored choice is returned.

        Parameters
        ----------
        path : str, os.PathLike or None
            The model file. One in :attr:`models_dir` is stored relative to it
            (a moved project keeps it), the bundled model's file as the bundled
            model, any other file by its absolute path. None clears the choice.
        bundled : bool, default False
            Choose the bundled model (``path`` is then ignored).

        Raises
        ------
        ProjectError
            settings.json cannot be written.
        """
        if bundled:
            choice: ModelChoice | None = ModelChoice(ModelKind.BUNDLED)
        elif path is None:
            choice = None
        else:
            choice = ModelChoice.for_path(Path(path), self._models_dir)
        self.set_setting(ACTIVE_MODEL_SETTING, None if choice is None else choice.to_setting())
        return choice


def _created(value: Any) -> _dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = _dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=_dt.UTC)


def _file_time(path: Path) -> _dt.datetime:
    try:
        return _dt.datetime.fromtimestamp(path.stat().st_mtime, _dt.UTC)
    except OSError:
        return _dt.datetime.fromtimestamp(0, _dt.UTC)
