"""The header of a safetensors file, read without torch and without the weights.

A safetensors file is an 8-byte little-endian header length, a JSON header
(each tensor's dtype, shape and byte range, plus ``__metadata__``: a map of
strings) and the tensor data. Model files and training checkpoints keep their
JSON document under one metadata key. This is the one reader of that header:
the model list (``io``), the model loader (``model``), checkpoints
(``training``) and the window's "resume this run?" all use it, and none of
them needs torch to do so.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from segstudio.core.errors import ModelFileError

#: A header larger than this is not ours (ours are a few hundred kB at most).
MAX_HEADER_BYTES: Final[int] = 100_000_000

#: Bytes per element of the dtypes safetensors writes.
DTYPE_BYTES: Final[dict[str, int]] = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip

TensorShapes = dict[str, tuple[tuple[int, ...], str]]


@dataclass(frozen=True)
class SafetensorsHeader:
    """What a safetensors header says: string metadata, and each tensor's shape and dtype."""

    path: Path
    what: str  # "model", "checkpoint": names the file in messages
    metadata: dict[str, str]
    tensors: TensorShapes

    def document(self, key: str) -> Any:
        """The JSON document stored under metadata ``key``; None when there is none.

        Raises
        ------
        ModelFileError
            The document is not valid JSON, or nested too deeply to be read.
        """
        raw = self.metadata.get(key)
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ModelFileError(
                f"{self.path}: {self.what} metadata is not valid JSON ({exc})"
            ) from exc
        except RecursionError:
            raise ModelFileError(
                f"{self.path}: {self.what} metadata is nested too deeply to be read"
            ) from None


def read_safetensors_header(path: str | Path, *, what: str = "model") -> SafetensorsHeader:
    """Read and check the header of the safetensors file ``path`` (no weights are read).

    The tensors' byte ranges must lie inside the file, so a truncated file is
    refused here rather than when its weights are loaded.

    Raises
    ------
    ModelFileError
        The file is missing, a folder, empty, unreadable, truncated, or not a
        safetensors file; ``what`` names the file in the message.
    """
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"{path}: {what} file not found")
    if path.is_dir():
        raise ModelFileError(f"{path}: is a folder, not a {what} file")
    try:
        with path.open("rb") as f:
            file_size = path.stat().st_size
            if file_size == 0:
                raise ModelFileError(f"{path}: {what} file is empty")
            size = int.from_bytes(f.read(8), "little")
            if not 2 <= size <= MAX_HEADER_BYTES:
                raise _unreadable(path, what, "bad header length")
            if size > file_size - 8:
                raise _unreadable(path, what, "the file is truncated")
            raw = f.read(size)
    except OSError as exc:
        why = exc.strerror or exc
        raise ModelFileError(f"{path}: cannot read the {what} file ({why})") from exc
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise _unreadable(path, what, "the header is not JSON") from exc
    if not isinstance(header, dict):
        raise _unreadable(path, what, "the header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise _unreadable(path, what, "__metadata__ is not a map of strings")
    data_size = file_size - 8 - size
    tensors: TensorShapes = {}
    for name, entry in header.items():
        tensors[name] = _tensor(path, what, name, entry, data_size)
    return SafetensorsHeader(path, what, metadata, tensors)


def _tensor(
    path: Path, what: str, name: str, entry: object, data_size: int
) -> tuple[tuple[int, ...], str]:
    """One tensor's (shape, dtype), checked against its byte range and the file's size."""
    if not isinstance(entry, dict):
        raise _unreadable(path, what, f"tensor {name!r} has no description")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if (
        dtype not in DTYPE_BYTES
        or not isinstance(shape, list)
        or not all(isinstance(n, int) and n >= 0 for n in shape)
        or not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(n, int) for n in offsets)
    ):
        raise _unreadable(path, what, f"tensor {name!r} is described wrongly")
    start, end = offsets
    if not 0 <= start <= end or end - start != math.prod(shape) * DTYPE_BYTES[dtype]:
        raise _unreadable(path, what, f"tensor {name!r} has a wrong byte range")
    if end > data_size:
        raise _unreadable(path, what, "the file is truncated")
    return tuple(shape), str(dtype)


def _unreadable(path: Path, what: str, why: str) -> ModelFileError:
    return ModelFileError(
        f"{path}: not a readable {what} file (corrupt, truncated or not safetensors: {why})"
    )
