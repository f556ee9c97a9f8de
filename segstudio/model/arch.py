"""Network architectures, described as data so that a model file rebuilds its own network.

An architecture is a name plus JSON-safe parameters (:class:`ArchSpec`). The
registry maps each name to a builder and the parameters it accepts, so
``build_model(ArchSpec("segnet", {"width": 0.5}), num_classes=11)`` and a
model file's metadata give the same network.

SegNet (Badrinarayanan, Kendall, Cipolla, 2017) keeps the indices of every
max-pooling in its encoder and hands them to max-unpooling in the mirrored
decoder. Pooling uses ``ceil_mode`` and unpooling is told the exact size from
before each pooling, so any height and width work (360 -> 180 -> 90 -> 45 ->
23, or 1023 x 77) and the output has exactly the input's size.

U-Net, FCN-8s, DeconvNet, DeepLab and PSPNet live in :mod:`segstudio.model.nets`
and their shared blocks in :mod:`segstudio.model.layers`; all are registered here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from segstudio.core.errors import ArchitectureError
from segstudio.model import nets
from segstudio.model.layers import (
    VGG16_STAGES,
    _channels,
    _conv_bn_relu,
    _EncoderDecoderWithIndices,
    mirrored_decoder,
    vgg16_encoder,
    vgg16_stage_widths,
)

__all__ = [
    "ARCHITECTURES",
    "VGG16_STAGES",
    "ArchInfo",
    "ArchSpec",
    "SegNet",
    "SegNetBasic",
    "build_model",
    "count_parameters",
    "resolve_spec",
]


@dataclass(frozen=True)
class ArchSpec:
    """An architecture as data: a registered name and its parameters."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "params": dict(self.params)}

    @classmethod
    def from_dict(cls, data: Any) -> ArchSpec:
        if not isinstance(data, Mapping) or not isinstance(data.get("name"), str):
            raise ArchitectureError(f"architecture must be an object with a 'name', got {data!r}")
        params = data.get("params", {})
        if not isinstance(params, Mapping):
            raise ArchitectureError(f"architecture 'params' must be an object, got {params!r}")
        return cls(data["name"], dict(params))


class SegNet(_EncoderDecoderWithIndices):
    """SegNet with a VGG16-BN encoder (13 convolutions) and the mirrored decoder.

    Parameters
    ----------
    num_classes
        Number of output classes.
    width
        Channel multiplier; 1.0 is the paper's network, 0.25 a light one.
    in_channels
        Input channels (3 for RGB).
    """

    def __init__(self, num_classes: int, width: float = 1.0, in_channels: int = 3) -> None:
        super().__init__()
        stages = vgg16_stage_widths(width)
        self.encoder = vgg16_encoder(in_channels, width)
        self.decoder = mirrored_decoder(stages, _conv_bn_relu)
        self.classifier = nn.Conv2d(stages[0][0], num_classes, 3, padding=1)


class SegNetBasic(_EncoderDecoderWithIndices):
    """SegNet-Basic: four 7x7 encoder layers of 64 channels, a mirrored decoder
    without ReLU (as in the paper), and a 1x1 classifier."""

    def __init__(
        self, num_classes: int, width: float = 1.0, in_channels: int = 3, depth: int = 4
    ) -> None:
        super().__init__()
        ch = _channels(64, width)
        self.encoder = nn.ModuleList(
            nn.Sequential(*_conv_bn_relu(in_channels if i == 0 else ch, ch, 7))
            for i in range(depth)
        )
        self.decoder = nn.ModuleList(
            nn.Sequential(*_conv_bn_relu(ch, ch, 7, relu=False)) for _ in range(depth)
        )
        self.classifier = nn.Conv2d(ch, num_classes, 1)


@dataclass(frozen=True)
class ArchInfo:
    """A registered architecture: its builder, accepted parameters and a description."""

    builder: Callable[..., nn.Module]
    defaults: Mapping[str, Any]
    description: str
    checks: Mapping[str, Callable[[Any], bool]]


def _width_ok(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and 0.05 <= float(v) <= 4.0


def _depth_ok(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 6


def _in_ch_ok(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 16


def _unet_depth_ok(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 5


def _classes_ok(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 255


def _hidden_ok(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 2 <= v <= 1024


def _strides_ok(v: Any) -> bool:
    return (
        isinstance(v, list | tuple)
        and len(v) <= 8
        and all(isinstance(s, int) and not isinstance(s, bool) and 2 <= s <= 256 for s in v)
    )


def _live_net(**params: Any) -> nn.Module:
    from segstudio.model.live import LiveNet  # builds its SegNet base through this registry

    return LiveNet(**params)


def _stride_ok(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v in (8, 16)


ARCHITECTURES: dict[str, ArchInfo] = {
    "segnet": ArchInfo(
        SegNet,
        {"width": 1.0, "in_channels": 3},
        "SegNet, VGG16-BN encoder (13 convs), pooling indices to the decoder; "
        "width < 1 gives a lighter SegNet",
        {"width": _width_ok, "in_channels": _in_ch_ok},
    ),
    "segnet_basic": ArchInfo(
        SegNetBasic,
        {"width": 1.0, "in_channels": 3, "depth": 4},
        "SegNet-Basic: 4 layers of 64 7x7 filters, pooling indices to the decoder",
        {"width": _width_ok, "in_channels": _in_ch_ok, "depth": _depth_ok},
    ),
    "unet": ArchInfo(
        nets.UNet,
        {"width": 0.5, "in_channels": 3, "depth": 4},
        "U-Net with batch norm: `depth` poolings of two 3x3 convs, 2x2 up-convolutions, "
        "skip concatenation; width 1.0 is the paper's 64..1024 channels, the default 0.5 "
        "(32..512) keeps it CPU-friendly",
        {"width": _width_ok, "in_channels": _in_ch_ok, "depth": _unet_depth_ok},
    ),
    "fcn8s": ArchInfo(
        nets.FCN8s,
        {"width": 0.5, "in_channels": 3},
        "FCN-8s on SegNet's VGG16-BN encoder; fc6/fc7 become 3x3/1x1 convs of 1024*width "
        "channels; scores from pool5, pool4, pool3 fused by 2x, 2x, then 8x bilinear "
        "upsampling; default width 0.5 for the CPU",
        {"width": _width_ok, "in_channels": _in_ch_ok},
    ),
    "deconvnet": ArchInfo(
        nets.DeconvNet,
        {"width": 0.5, "in_channels": 3},
        "DeconvNet: VGG16-BN encoder, pooling indices to unpooling (as SegNet), a mirrored "
        "decoder of 3x3 deconvolutions; fc6/fc7 become 3x3/1x1 convs of 1024*width channels; "
        "default width 0.5 for the CPU",
        {"width": _width_ok, "in_channels": _in_ch_ok},
    ),
    "deeplab": ArchInfo(
        nets.DeepLab,
        {"width": 0.5, "in_channels": 3, "output_stride": 8},
        "DeepLabv3-style: VGG16-BN with pool4/pool5 removed and stage 5 dilated (output "
        "stride 8; 16 keeps pool4), ASPP (1x1, three 3x3 atrous convs at 12/24/36, or 6/12/18 "
        "at stride 16, image pooling), bilinear upsampling; default width 0.5 for the CPU",
        {"width": _width_ok, "in_channels": _in_ch_ok, "output_stride": _stride_ok},
    ),
    "pspnet": ArchInfo(
        nets.PSPNet,
        {"width": 0.5, "in_channels": 3, "output_stride": 8},
        "PSPNet-style: DeepLab's dilated VGG16-BN backbone, pyramid pooling (bins 1, 2, 3, 6), "
        "a 3x3 conv, bilinear upsampling; default width 0.5 for the CPU",
        {"width": _width_ok, "in_channels": _in_ch_ok, "output_stride": _stride_ok},
    ),
}

#: Architectures made by a learner rather than chosen for a new model (``model new``,
#: ``train --arch`` and the fine-tune dialog offer :data:`ARCHITECTURES` only).
LEARNED_ARCHITECTURES: dict[str, ArchInfo] = {
    "live": ArchInfo(
        _live_net,
        {
            "base_classes": 11,
            "base_width": 0.5,
            "in_channels": 3,
            "hidden": 64,
            "colour_strides": [4, 16, 64],
            "decoder": True,
            "smooth": 1,
        },
        "the live learner: a frozen SegNet (base_classes, base_width) read at every scale, "
        "and its input averaged at `colour_strides`, with a per-pixel head of `hidden` ReLUs "
        "trained in seconds on the labelled pixels",
        {
            "base_classes": _classes_ok,
            "base_width": _width_ok,
            "in_channels": _in_ch_ok,
            "hidden": _hidden_ok,
            "colour_strides": _strides_ok,
            "decoder": lambda v: isinstance(v, bool),
            "smooth": lambda v: (
                isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 31 and v % 2 == 1
            ),
        },
    ),
}


def resolve_spec(spec: ArchSpec) -> ArchSpec:
    """Validate a spec and fill in defaults, so stored specs are explicit."""
    info = ARCHITECTURES.get(spec.name) or LEARNED_ARCHITECTURES.get(spec.name)
    if info is None:
        known = ", ".join(sorted(ARCHITECTURES))
        raise ArchitectureError(f"unknown architecture {spec.name!r}; known: {known}")
    unknown = sorted(set(spec.params) - set(info.defaults))
    if unknown:
        raise ArchitectureError(
            f"architecture {spec.name!r} has no parameter(s) {', '.join(unknown)}; "
            f"it takes {', '.join(sorted(info.defaults))}"
        )
    params = {**info.defaults, **spec.params}
    for key, value in params.items():
        if not info.checks[key](value):
            raise ArchitectureError(f"architecture {spec.name!r}: bad value {value!r} for {key!r}")
    return ArchSpec(spec.name, params)


def build_model(spec: ArchSpec, num_classes: int) -> nn.Module:
    """Build the network a spec describes, with ``num_classes`` outputs."""
    if not 1 <= num_classes <= 255:
        raise ArchitectureError(f"num_classes must be 1..255, got {num_classes}")
    spec = resolve_spec(spec)
    info = ARCHITECTURES.get(spec.name) or LEARNED_ARCHITECTURES[spec.name]
    return info.builder(num_classes=num_classes, **spec.params)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
