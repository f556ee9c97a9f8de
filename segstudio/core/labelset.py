"""Label sets: the classes of a project, their order (= class id) and colours.

A label map is a ``uint8`` H x W array holding class ids ``0..N-1`` and
:data:`UNLABELED` (255) for pixels nobody labelled. A :class:`LabelSet` says
what each id means and how it is drawn; it is an immutable value that can be
written to and read from a small JSON file::

    {"format": "segstudio.labelset", "version": 1, "name": "CamVid-11",
     "unlabeled_color": [0, 0, 0],
     "classes": [{"index": 0, "name": "Sky", "color": [128, 128, 128]}, ...]}

:meth:`LabelSet.from_dict` also reads the ``classes.json`` of the CamVid copy
that SegNet was trained on (``void_color``, ``void_index``).
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import numbers
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Final

import numpy as np

from segstudio.core.atomic import atomic_write_text
from segstudio.core.colours import distinct_color
from segstudio.core.errors import LabelSetError

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MAX_CLASSES",
    "PRESETS",
    "UNLABELED",
    "Color",
    "LabelClass",
    "LabelSet",
    "distinct_color",
    "preset",
    "read_classes_file",
    "read_void_index",
]

UNLABELED: Final[int] = 255
"""Label-map value of pixels that carry no class (ignored by training and metrics)."""

MAX_CLASSES: Final[int] = 255
"""Class ids are 0..254, because 255 is :data:`UNLABELED`."""

FORMAT: Final[str] = "segstudio.labelset"
FORMAT_VERSION: Final[int] = 1
MAX_FILE_BYTES: Final[int] = 16 * 1024 * 1024
"""A label set file larger than this is refused unread (256 classes take a few kB)."""

Color = tuple[int, int, int]
"""An RGB colour, three ints in 0..255."""


def _check_color(value: object, what: str) -> Color:
    """Return ``value`` as an ``(r, g, b)`` tuple of Python ints or raise LabelSetError."""
    if isinstance(value, str | bytes) or not isinstance(value, Sequence | np.ndarray):
        raise LabelSetError(f"{what}: a colour must be 3 integers [r, g, b], got {value!r}")
    items = list(value)
    if len(items) != 3:
        raise LabelSetError(
            f"{what}: a colour must be 3 integers [r, g, b], got {len(items)} values {value!r}"
        )
    for v in items:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise LabelSetError(f"{what}: colour values must be integers, got {value!r}")
        if not 0 <= int(v) <= 255:
            raise LabelSetError(f"{what}: colour values must lie in 0..255, got {value!r}")
    r, g, b = (int(v) for v in items)
    return (r, g, b)


@dataclass(frozen=True)
class LabelClass:
    """One class of a label set.

    Parameters
    ----------
    name : str
        Display name; surrounding white space is stripped and it must not be
        empty. Names are unique within a label set, ignoring case.
    color : tuple of int
        ``(r, g, b)``, each 0..255. Any sequence of three integers is accepted
        and stored as a tuple.
    """

    name: str
    color: Color

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise LabelSetError(f"a class name must be a string, got {self.name!r}")
        name = self.name.strip()
        if not name:
            raise LabelSetError("a class name must not be empty")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "color", _check_color(self.color, f"class {name!r}"))


@dataclass(frozen=True)
class LabelSet:
    """An ordered set of classes; the position of a class is its id in label maps.

    Parameters
    ----------
    name : str
        Name of the label set (not part of class identity, see :meth:`same_classes`).
    classes : tuple of LabelClass
        1 to 255 classes with unique names (ignoring case) and unique colours.
    unlabeled_color : tuple of int, default (0, 0, 0)
        Colour of :data:`UNLABELED` pixels in colour label images; no class may use it.

    Raises
    ------
    LabelSetError
        If any of the rules above is broken; the message names the offending
        classes or colour.
    """

    name: str
    classes: tuple[LabelClass, ...]
    unlabeled_color: Color = (0, 0, 0)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise LabelSetError(f"a label set needs a non-empty name, got {self.name!r}")
        object.__setattr__(self, "name", self.name.strip())
        if isinstance(self.classes, str | bytes | Mapping) or not isinstance(
            self.classes, Sequence
        ):
            raise LabelSetError(
                f"label set {self.name!r}: classes must be a sequence of LabelClass"
            )
        classes = tuple(self.classes)
        for i, c in enumerate(classes):
            if not isinstance(c, LabelClass):
                raise LabelSetError(
                    f"label set {self.name!r}: class {i} must be a LabelClass, got {c!r}"
                )
        object.__setattr__(self, "classes", classes)
        unlabeled = _check_color(self.unlabeled_color, f"label set {self.name!r}: unlabeled")
        object.__setattr__(self, "unlabeled_color", unlabeled)

        if not 1 <= len(classes) <= MAX_CLASSES:
            raise LabelSetError(
                f"label set {self.name!r} has {len(classes)} classes; "
                f"it needs between 1 and {MAX_CLASSES} (id {UNLABELED} means unlabeled)"
            )
        by_name: dict[str, int] = {}
        by_color: dict[Color, int] = {}
        for i, c in enumerate(classes):
            key = c.name.casefold()
            if key in by_name:
                j = by_name[key]
                raise LabelSetError(
                    f"label set {self.name!r}: classes {j} {classes[j].name!r} and "
                    f"{i} {c.name!r} have the same name (names are compared ignoring case)"
                )
            by_name[key] = i
            if c.color == unlabeled:
                raise LabelSetError(
                    f"label set {self.name!r}: class {i} {c.name!r} has colour {c.color}, "
                    "which is the unlabeled colour; give it another colour"
                )
            if c.color in by_color:
                j = by_color[c.color]
                raise LabelSetError(
                    f"label set {self.name!r}: classes {j} {classes[j].name!r} and "
                    f"{i} {c.name!r} have the same colour {c.color}"
                )
            by_color[c.color] = i

    # ------------------------------------------------------------------ queries

    @property
    def num_classes(self) -> int:
        """Number of classes N (ids 0..N-1)."""
        return len(self.classes)

    @property
    def names(self) -> tuple[str, ...]:
        """Class names in id order."""
        return tuple(c.name for c in self.classes)

    @property
    def colors(self) -> np.ndarray:
        """Class colours in id order, a new ``uint8`` array of shape (N, 3)."""
        return np.array([c.color for c in self.classes], dtype=np.uint8).reshape(-1, 3)

    def palette(self) -> np.ndarray:
        """Return the 256-entry colour table of label maps.

        Returns
        -------
        numpy.ndarray
            New ``uint8`` array of shape (256, 3): row ``i < N`` is the colour of
            class ``i``; every other row, :data:`UNLABELED` included, is the
            unlabeled colour. ``palette()[label_map]`` paints a label map.
        """
        table = np.empty((256, 3), dtype=np.uint8)
        table[:] = self.unlabeled_color
        table[: self.num_classes] = self.colors
        return table

    def index_of(self, name: str) -> int:
        """Return the id of the class called ``name`` (case-insensitive).

        Raises
        ------
        LabelSetError
            If no class has that name; the message lists the names there are.
        """
        key = name.strip().casefold() if isinstance(name, str) else None
        for i, c in enumerate(self.classes):
            if c.name.casefold() == key:
                return i
        raise LabelSetError(
            f"label set {self.name!r} has no class {name!r}; its classes are: "
            + ", ".join(self.names)
        )

    def same_classes(self, other: LabelSet) -> bool:
        """Return whether ``other`` has the same class names and colours in the same order.

        The label-set name and the unlabeled colour are not compared: they do
        not change what a label map means.
        """
        return isinstance(other, LabelSet) and self.classes == other.classes

    def same_names(self, other: LabelSet) -> bool:
        """Return whether ``other`` names the same classes in the same order (any case).

        What a model's output indices mean: a model fits a project whose classes
        have these names even after the user recoloured some of them.
        """
        return isinstance(other, LabelSet) and [n.casefold() for n in self.names] == [
            n.casefold() for n in other.names
        ]

    # ------------------------------------------------------------ serialisation

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready dictionary of the SegStudio label-set format."""
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "name": self.name,
            "unlabeled_color": list(self.unlabeled_color),
            "classes": [
                {"index": i, "name": c.name, "color": list(c.color)}
                for i, c in enumerate(self.classes)
            ],
        }

    @classmethod
    def from_dict(cls, d: object) -> LabelSet:
        """Build a label set from a parsed JSON object (anything else raises LabelSetError).

        Two layouts are read: the SegStudio format (``"format":
        "segstudio.labelset"``, see :meth:`to_dict`), and a plain ``classes``
        list such as CamVid's ``classes.json`` (``void_color`` is taken as the
        unlabeled colour; ``void_index``, the value that marks void in that
        dataset's label files, must not collide with a class id; a missing
        ``name`` becomes ``"Unnamed"``). Classes with
        ``"index"`` keys are put in index order; the indices must be exactly
        ``0..N-1``.

        Raises
        ------
        LabelSetError
            If the object does not follow either layout; the message says where.
        """
        if not isinstance(d, Mapping):
            raise LabelSetError(f"a label set must be a JSON object, got {type(d).__name__}")
        fmt = d.get("format")
        if fmt is not None:
            if fmt != FORMAT:
                raise LabelSetError(f"not a SegStudio label set: format is {fmt!r}, not {FORMAT!r}")
            version = d.get("version")
            if isinstance(version, bool) or not isinstance(version, int):
                raise LabelSetError(f"label set: 'version' must be an integer, got {version!r}")
            if version > FORMAT_VERSION:
                raise LabelSetError(
                    f"label set format version {version} was written by a newer SegStudio; "
                    f"this one reads version {FORMAT_VERSION}"
                )
            if version < 1:
                raise LabelSetError(f"label set: invalid format version {version}")
            if "name" not in d:
                raise LabelSetError("label set: missing key 'name'")
            name = d["name"]
            unlabeled = d.get("unlabeled_color", (0, 0, 0))
        else:
            name = d.get("name", "Unnamed")
            if "unlabeled_color" in d and "void_color" in d:
                raise LabelSetError(
                    "label set: give either 'unlabeled_color' or 'void_color', not both"
                )
            unlabeled = d.get("unlabeled_color", d.get("void_color", (0, 0, 0)))
        if not isinstance(name, str):
            raise LabelSetError(f"label set: 'name' must be a string, got {name!r}")

        if "classes" not in d:
            raise LabelSetError("label set: missing key 'classes'")
        raw = d["classes"]
        if not isinstance(raw, list):
            raise LabelSetError(f"label set: 'classes' must be a list, got {type(raw).__name__}")
        classes = _parse_classes(raw)
        if fmt is None and "unlabeled_color" not in d and "void_color" not in d:
            # A dataset's own classes list (index PNGs) names no unlabeled colour and
            # often paints its background black: take a colour no class uses.
            unlabeled = _free_color({c.color for c in classes})
        unlabeled_color = _check_color(unlabeled, "label set: unlabeled_color")
        if fmt is None and "void_index" in d:
            void = d["void_index"]
            if isinstance(void, bool) or not isinstance(void, int) or not 0 <= void <= 255:
                raise LabelSetError(
                    f"label set: 'void_index' must be an integer in 0..255, got {void!r}"
                )
            if void < len(classes):
                raise LabelSetError(
                    f"label set: 'void_index' {void} is the id of class "
                    f"{classes[void].name!r}; void must come after the {len(classes)} classes"
                )
        return cls(name=name, classes=classes, unlabeled_color=unlabeled_color)

    def to_json(self) -> str:
        """Return the label set as JSON text, one class per line, ending in a newline."""
        d = self.to_dict()
        lines = ["{"]
        for key in ("format", "version", "name", "unlabeled_color"):
            lines.append(f"  {json.dumps(key)}: {json.dumps(d[key], ensure_ascii=False)},")
        lines.append('  "classes": [')
        rows = [f"    {json.dumps(c, ensure_ascii=False)}" for c in d["classes"]]
        lines.append(",\n".join(rows))
        lines.append("  ]")
        lines.append("}")
        return "\n".join(lines) + "\n"

    @classmethod
    def from_json(cls, text: str) -> LabelSet:
        """Parse JSON text written by :meth:`to_json` (or CamVid's ``classes.json``).

        Raises
        ------
        LabelSetError
            If the text is not JSON (the message gives line and column) or does
            not describe a valid label set.
        """
        return cls.from_dict(_parse_json(text))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the label set to ``path`` as JSON, atomically.

        The text goes to a temporary file in the same folder, which is flushed,
        synced and then renamed over ``path``: a crash leaves either the old file
        or the new one, never half of one.

        Raises
        ------
        LabelSetError
            If the file cannot be written; the message names it.
        """
        path = Path(path)
        try:
            atomic_write_text(path, self.to_json())
        except OSError as e:
            raise LabelSetError(f"cannot write label set file {path}: {e.strerror or e}") from e

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LabelSet:
        """Read a label set JSON file (SegStudio format or CamVid ``classes.json``).

        Raises
        ------
        LabelSetError
            If the file is missing or unreadable, is not JSON, or is not a valid
            label set. The message starts with the file's path.
        """
        return read_classes_file(path)[0]


def _free_color(used: set[Color]) -> Color:
    """Black, else the first of a few plain colours, else any colour no class uses."""
    for color in ((0, 0, 0), (255, 255, 255), (64, 64, 64), (255, 0, 255)):
        if color not in used:
            return color
    return next(
        (r, g, b)
        for r in range(256)
        for g in range(256)
        for b in range(256)
        if (r, g, b) not in used
    )


def read_classes_file(path: str | os.PathLike[str]) -> tuple[LabelSet, int | None]:
    """A label set file and its CamVid-style ``void_index`` (None when it has none).

    Raises :class:`LabelSetError` as :meth:`LabelSet.load` does.
    """
    path = Path(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise LabelSetError(
                f"{path}: {path.stat().st_size:,} bytes is too large for a label set file "
                f"(at most {MAX_FILE_BYTES:,})"
            )
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as e:
        raise LabelSetError(f"{path}: label set file not found") from e
    except IsADirectoryError as e:
        raise LabelSetError(f"{path}: is a folder, not a label set file") from e
    except UnicodeDecodeError as e:
        raise LabelSetError(f"{path}: not a text file (invalid UTF-8 at byte {e.start})") from e
    except OSError as e:
        raise LabelSetError(f"{path}: cannot read label set file: {e.strerror or e}") from e
    try:
        labelset = LabelSet.from_json(text)
    except LabelSetError as e:
        raise LabelSetError(f"{path}: {e}") from e
    return labelset, _void_index(_parse_json(text))  # valid JSON: from_json parsed it


def read_void_index(path: str | os.PathLike[str]) -> int | None:
    """Only the ``void_index`` of a classes JSON (its classes may be anything).

    Raises :class:`LabelSetError` when the file cannot be read or is not JSON.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise LabelSetError(f"{path}: cannot read it ({e})") from e
    try:
        return _void_index(_parse_json(text))
    except LabelSetError as e:
        raise LabelSetError(f"{path}: {e}") from e


def _void_index(raw: Any) -> int | None:
    void = raw.get("void_index") if isinstance(raw, dict) else None
    return void if isinstance(void, int) and not isinstance(void, bool) else None


def _parse_json(text: str) -> Any:
    if not isinstance(text, str):
        raise LabelSetError(f"label set JSON must be text, got {type(text).__name__}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise LabelSetError(f"not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}") from e
    except RecursionError:
        # A document nested thousands deep: Python's parser gives up, as would any reader.
        raise LabelSetError("not a label set: its JSON is nested too deeply") from None


def _parse_classes(raw: list[Any]) -> tuple[LabelClass, ...]:
    """Turn the ``classes`` list of a label-set JSON object into ordered LabelClass values."""
    if not raw:
        raise LabelSetError("label set: 'classes' is empty; a label set needs at least one class")
    entries: list[tuple[int | None, LabelClass]] = []
    for i, item in enumerate(raw):
        where = f"label set: classes[{i}]"
        if not isinstance(item, Mapping):
            raise LabelSetError(f"{where} must be an object with 'name' and 'color', got {item!r}")
        for key in ("name", "color"):
            if key not in item:
                raise LabelSetError(f"{where}: missing key {key!r}")
        index = item.get("index")
        if index is not None and (isinstance(index, bool) or not isinstance(index, int)):
            raise LabelSetError(f"{where}: 'index' must be an integer, got {index!r}")
        try:
            entries.append((index, LabelClass(name=item["name"], color=item["color"])))
        except LabelSetError as e:
            raise LabelSetError(f"{where}: {e}") from e

    indexed = [(index, c) for index, c in entries if index is not None]
    if not indexed:
        return tuple(c for _, c in entries)
    if len(indexed) != len(entries):
        raise LabelSetError("label set: either every class has an 'index' or none has")
    given = [index for index, _ in indexed]
    if sorted(given) != list(range(len(given))):
        raise LabelSetError(
            f"label set: class indices must be 0..{len(given) - 1}, each once; got {given}"
        )
    return tuple(c for _, c in sorted(indexed, key=lambda e: e[0]))


# ---------------------------------------------------------------------- presets

_PRESET_KEYS: Final[tuple[str, ...]] = ("camvid11", "camvid32", "voc", "cityscapes")


def _preset_text(key: str) -> str:
    folder: Traversable
    try:
        folder = importlib.resources.files("segstudio.resources") / "presets"
    except ModuleNotFoundError:
        # A source checkout that was never installed: `resources/` lies beside the package.
        folder = Path(__file__).resolve().parents[2] / "resources" / "presets"
    return (folder / f"{key}.json").read_text(encoding="utf-8")


@functools.cache
def _load_preset(key: str) -> LabelSet:
    try:
        text = _preset_text(key)
    except OSError as e:
        raise LabelSetError(f"preset label set {key!r} is missing from this installation") from e
    try:
        return LabelSet.from_json(text)
    except LabelSetError as e:
        raise LabelSetError(f"preset label set {key!r} is damaged: {e}") from e


class _Presets(Mapping[str, LabelSet]):
    """Read-only mapping of preset key -> LabelSet; each file is read on first use."""

    def __getitem__(self, key: str) -> LabelSet:
        if key not in _PRESET_KEYS:
            raise KeyError(key)
        return _load_preset(key)

    def __iter__(self) -> Iterator[str]:
        return iter(_PRESET_KEYS)

    def __len__(self) -> int:
        return len(_PRESET_KEYS)

    def __contains__(self, key: object) -> bool:
        return key in _PRESET_KEYS

    def __repr__(self) -> str:
        return f"<label set presets: {', '.join(_PRESET_KEYS)}>"


PRESETS: Final[Mapping[str, LabelSet]] = _Presets()
"""Bundled label sets by key: ``camvid11``, ``camvid32``, ``voc``, ``cityscapes``.

A read-only mapping whose values are loaded lazily from
``segstudio.resources/presets/<key>.json`` and cached.
"""


def preset(name: str) -> LabelSet:
    """Return the bundled label set called ``name`` (case-insensitive).

    Parameters
    ----------
    name : str
        One of the keys of :data:`PRESETS`: ``camvid11`` (the 11 classes SegNet
        was trained on), ``camvid32`` (full CamVid palette), ``voc`` (Pascal VOC,
        21 classes), ``cityscapes`` (19 training classes).

    Raises
    ------
    LabelSetError
        If there is no such preset; the message lists the known ones.
    """
    key = name.strip().casefold() if isinstance(name, str) else ""
    if key not in _PRESET_KEYS:
        raise LabelSetError(
            f"unknown label set preset {name!r}; known presets: {', '.join(_PRESET_KEYS)}"
        )
    return PRESETS[key]
