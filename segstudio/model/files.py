"""Model files: safetensors weights plus JSON metadata in the same file.

A SegStudio model file is a plain safetensors file. Its header metadata holds
one key, ``segstudio``, whose value is a JSON document describing the
architecture (so the file rebuilds its own network), the label set, the input
normalisation, the provenance and the metrics. Loading validates all of it
and every tensor's name, shape and dtype against the network the metadata
describes, built first without memory (on PyTorch's ``meta`` device), so a file
whose metadata lies is refused in milliseconds, before a network of the claimed
size is allocated; nothing is ever unpickled.
"""

from __future__ import annotations

import datetime as _dt
import getpass
import json
import logging
import math
import os
import platform
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from segstudio.core.atomic import atomic_path
from segstudio.core.errors import (
    ArchitectureError,
    LabelSetError,
    LabelSetMismatchError,
    ModelFileError,
)
from segstudio.core.labelset import LabelSet
from segstudio.core.safetensors_header import TensorShapes, read_safetensors_header
from segstudio.model.arch import ArchSpec, build_model, resolve_spec

log = logging.getLogger(__name__)

FORMAT = "segstudio.model"
FORMAT_VERSION = 1
METADATA_KEY = "segstudio"
#: ImageNet statistics, in 0..1 units: the usual normalisation of VGG encoders.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Normalization:
    """Per-channel input normalisation: ``(pixel / 255 - mean) / std``."""

    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD

    def __post_init__(self) -> None:
        if len(self.mean) != len(self.std) or not self.mean:
            raise ModelFileError("normalization mean and std must have the same, non-zero length")
        if any(not math.isfinite(s) or s <= 0 for s in self.std):
            raise ModelFileError(f"normalization std must be positive, got {self.std}")
        if any(not math.isfinite(m) for m in self.mean):
            raise ModelFileError(f"normalization mean must be finite, got {self.mean}")

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: Any) -> Normalization:
        try:
            return cls(tuple(float(v) for v in data["mean"]), tuple(float(v) for v in data["std"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"bad normalization entry {data!r}") from exc


@dataclass(frozen=True)
class ModelInfo:
    """Everything a model file says about its network, apart from the weights."""

    arch: ArchSpec
    labelset: LabelSet
    normalization: Normalization = field(default_factory=Normalization)
    provenance: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "arch": self.arch.to_dict(),
            "labelset": self.labelset.to_dict(),
            "normalization": self.normalization.to_dict(),
            "provenance": dict(self.provenance),
            "metrics": dict(self.metrics),
        }

    @classmethod
    def from_dict(cls, data: Any) -> ModelInfo:
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            raise ModelFileError("not a SegStudio model (its metadata has no 'segstudio.model')")
        version = data.get("version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ModelFileError(
                f"model file format version {version!r} is newer than this SegStudio "
                f"understands ({FORMAT_VERSION}); update SegStudio"
            )
        try:
            arch = resolve_spec(ArchSpec.from_dict(data.get("arch")))
            labelset = LabelSet.from_dict(data.get("labelset"))
        except (ArchitectureError, LabelSetError) as exc:
            raise ModelFileError(str(exc)) from exc
        normalization = Normalization.from_dict(data.get("normalization"))
        channels = arch.params.get("in_channels", 3)
        if len(normalization.mean) != channels:
            raise ModelFileError(
                f"the network takes {channels} input channel(s) but the normalisation "
                f"describes {len(normalization.mean)}"
            )
        provenance = data.get("provenance", {})
        metrics = data.get("metrics", {})
        if not isinstance(provenance, Mapping) or not isinstance(metrics, Mapping):
            raise ModelFileError("'provenance' and 'metrics' must be JSON objects")
        return cls(
            arch=arch,
            labelset=labelset,
            normalization=normalization,
            provenance=dict(provenance),
            metrics=dict(metrics),
        )


@dataclass
class LoadedModel:
    """A network in eval mode on the CPU, in float32, with its metadata."""

    info: ModelInfo
    network: nn.Module
    path: Path | None = None


def default_provenance(**extra: Any) -> dict[str, Any]:
    """Who made a model, when, where and with which software."""
    from segstudio import __version__

    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - getpass raises a platform-dependent error without a user
        user = "unknown"
    return {
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "created_by": user,
        "host": platform.node(),
        "segstudio_version": __version__,
        "torch_version": torch.__version__,
        **extra,
    }


def new_model(
    arch: ArchSpec,
    labelset: LabelSet,
    *,
    seed: int = 0,
    provenance: Mapping[str, Any] | None = None,
) -> LoadedModel:
    """An untrained network for ``labelset`` (reproducible from ``seed``)."""
    arch = resolve_spec(arch)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = build_model(arch, labelset.num_classes)
    network.eval()
    prov = default_provenance(kind="untrained", seed=seed, **(provenance or {}))
    channels = int(arch.params.get("in_channels", 3))
    norm = (
        Normalization() if channels == 3 else Normalization((0.5,) * channels, (0.25,) * channels)
    )
    info = ModelInfo(arch=arch, labelset=labelset, normalization=norm, provenance=prov)
    return LoadedModel(info, network)


def save_model(path: str | Path, model: LoadedModel, *, half: bool = False) -> Path:
    """Write ``model`` atomically as a safetensors file with its metadata.

    ``half`` stores floating-point tensors as float16 (half the size, e.g. for a
    model shipped with the app); loading turns them back into float32.
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ModelFileError(f"{path}: model files must end in .safetensors")
    if not path.parent.is_dir():
        raise ModelFileError(f"{path}: folder {path.parent} does not exist")
    state = {}
    for key, value in model.network.state_dict().items():
        value = value.detach().to("cpu")
        if half and value.is_floating_point():
            if not torch.isfinite(value.half()).all():
                raise ModelFileError(f"tensor {key} does not fit float16; save it in float32")
            value = value.half()
        state[key] = value.contiguous()
    meta = {METADATA_KEY: json.dumps(model.info.to_dict(), sort_keys=True)}
    with atomic_path(path) as tmp:
        try:
            save_file(state, str(tmp), metadata=meta)
        except SafetensorError as exc:
            raise as_write_error(path, exc) from exc
    model.path = path
    return path


def as_write_error(path: Path, exc: SafetensorError) -> Exception:
    """safetensors' write failure as an OSError with its errno (disk full, ...) when it
    names one, so callers handle it as any failed write; else a ModelFileError."""
    found = re.search(r"os error (\d+)", str(exc))
    if found:
        code = int(found.group(1))
        return OSError(code, os.strerror(code) if code else str(exc), str(path))
    return ModelFileError(f"{path}: cannot write the model file ({exc})")


def read_header(path: str | Path, key: str, *, what: str = "model") -> tuple[Any, TensorShapes]:
    """The JSON document under metadata ``key`` of a safetensors file, and its tensors'
    shapes and dtypes, without reading any weights (model files and training checkpoints).

    Returns
    -------
    tuple
        ``(document or None when the file has no such key, shapes)``.

    Raises
    ------
    ModelFileError
        The file is missing, a folder, empty, not a readable safetensors file,
        or its ``key`` is not valid JSON; ``what`` names the file in the message.
    """
    header = read_safetensors_header(path, what=what)
    return header.document(key), header.tensors


def _open_header(path: Path) -> tuple[ModelInfo, TensorShapes]:
    data, shapes = read_header(path, METADATA_KEY)
    if data is None:
        raise ModelFileError(f"{path}: a safetensors file, but not a SegStudio model (no metadata)")
    try:
        info = ModelInfo.from_dict(data)
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: {exc}") from exc
    return info, shapes


def check_shapes(path: Path, info: ModelInfo, shapes: TensorShapes) -> None:
    """Refuse a file whose tensors are not those of the network its metadata describes.

    The network is built on PyTorch's ``meta`` device: shapes only, no memory and
    no initialisation, so even metadata claiming a huge network costs milliseconds.

    Raises
    ------
    ModelFileError
        A tensor is missing, unexpected, or of another shape; the message names
        the file and the first offending tensor.
    """
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in _meta_state(info).items()}
    missing = sorted(set(expected) - set(shapes))
    extra = sorted(set(shapes) - set(expected))
    if missing or extra:
        raise ModelFileError(
            f"{path}: weights do not fit architecture {info.arch.name!r} "
            f"{dict(info.arch.params)} "
            f"(missing {missing[:3]}{'...' if len(missing) > 3 else ''}, "
            f"unexpected {extra[:3]}{'...' if len(extra) > 3 else ''})"
        )
    for key, shape in expected.items():
        have = shapes[key][0]
        if have != shape:
            raise ModelFileError(
                f"{path}: tensor {key} has shape {list(have)}, but the architecture its "
                f"metadata names ({info.arch.name} {dict(info.arch.params)}) needs "
                f"{list(shape)}: the metadata does not describe these weights"
            )


def _meta_state(info: ModelInfo) -> dict[str, torch.Tensor]:
    """The state dict of ``info``'s network built on the current (meta) device."""
    return build_model(info.arch, info.labelset.num_classes).state_dict()


def read_model_info(path: str | Path) -> ModelInfo:
    """Read and validate a model file's metadata without loading its weights."""
    return _open_header(Path(path))[0]


def check_labelset(info: ModelInfo, expected: LabelSet, source: str = "model") -> None:
    """Raise :class:`LabelSetMismatchError` when a model's classes differ from ``expected``."""
    if info.labelset.same_classes(expected):
        return
    have = [c.name for c in info.labelset.classes]
    want = [c.name for c in expected.classes]
    if have == want:
        detail = "the same class names with different colours"
    else:
        detail = f"classes {have} where {want} were expected"
    raise LabelSetMismatchError(f"{source} has {detail}")


def load_model(path: str | Path, *, expect_labelset: LabelSet | None = None) -> LoadedModel:
    """Load and fully validate a model file.

    Raises
    ------
    ModelFileError
        The file is missing, corrupt, truncated, not a SegStudio model, or its
        tensors do not fit the architecture its metadata names.
    LabelSetMismatchError
        ``expect_labelset`` is given and the model's classes differ.
    """
    path = Path(path)
    info, shapes = _open_header(path)
    if expect_labelset is not None:
        check_labelset(info, expect_labelset, source=str(path))
    check_shapes(path, info, shapes)
    # The weights fit: the network is no larger than the file's own tensors.
    network = build_model(info.arch, info.labelset.num_classes)
    expected = network.state_dict()
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            state = {key: f.get_tensor(key) for key in expected}
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise ModelFileError(f"{path}: weights cannot be read ({exc})") from exc
    for key, value in state.items():
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise ModelFileError(f"{path}: tensor {key} holds NaN or infinite values")
        state[key] = value.to(expected[key].dtype)
    network.load_state_dict(state, strict=True)
    network.eval()
    return LoadedModel(info, network, path)


def with_metadata(model: LoadedModel, **changes: Any) -> LoadedModel:
    """A copy of ``model`` sharing its network, with some ModelInfo fields replaced."""
    return LoadedModel(replace(model.info, **changes), model.network, model.path)
