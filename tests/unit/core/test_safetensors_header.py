"""core/safetensors_header.py: the one header reader, torch-free, checked against the file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from segstudio.core.errors import ModelFileError
from segstudio.core.safetensors_header import read_safetensors_header


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    path = tmp_path / "m.safetensors"
    tensors = {"w": np.zeros((3, 4), np.float32), "b": np.ones(5, np.uint8)}
    save_file(tensors, str(path), metadata={"segstudio": json.dumps({"format": "x", "n": 1})})
    return path


def test_reads_metadata_and_shapes_without_the_weights(saved: Path) -> None:
    header = read_safetensors_header(saved)
    assert header.tensors == {"w": ((3, 4), "F32"), "b": ((5,), "U8")}
    assert header.document("segstudio") == {"format": "x", "n": 1}
    assert header.document("other") is None


@pytest.mark.parametrize("keep", [4, 40, -1])
def test_a_truncated_file_is_refused(saved: Path, keep: int) -> None:
    data = saved.read_bytes()
    saved.write_bytes(data[:keep])
    with pytest.raises(ModelFileError, match="not a readable model file") as info:
        read_safetensors_header(saved)
    assert str(saved) in str(info.value) and "\n" not in str(info.value)


def _raw(path: Path, header: object, data: bytes = b"") -> Path:
    text = json.dumps(header).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + data)
    return path


@pytest.mark.parametrize(
    ("header", "data", "says"),
    [
        ([1, 2], b"", "not a JSON object"),
        ({"__metadata__": {"k": 5}}, b"", "map of strings"),
        ({"t": {"dtype": "X9", "shape": [1], "data_offsets": [0, 1]}}, b"\0", "described wrongly"),
        ({"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 8, "byte range"),
        ({"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4, "truncated"),
    ],
)
def test_lying_headers_are_refused(tmp_path: Path, header: object, data: bytes, says: str) -> None:
    path = _raw(tmp_path / "bad.safetensors", header, data)
    with pytest.raises(ModelFileError, match=says):
        read_safetensors_header(path)


def test_missing_empty_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="checkpoint file not found"):
        read_safetensors_header(tmp_path / "none.safetensors", what="checkpoint")
    (tmp_path / "empty.safetensors").write_bytes(b"")
    with pytest.raises(ModelFileError, match="is empty"):
        read_safetensors_header(tmp_path / "empty.safetensors")
    with pytest.raises(ModelFileError, match="is a folder"):
        read_safetensors_header(tmp_path)


def test_nested_metadata_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.safetensors"
    save_file({"w": np.zeros(1, np.float32)}, str(path), metadata={"k": "[" * 100_000})
    with pytest.raises(ModelFileError, match=r"not valid JSON|nested too deeply"):
        read_safetensors_header(path).document("k")
