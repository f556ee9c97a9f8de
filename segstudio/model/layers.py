"""Building blocks shared by the architectures in :mod:`segstudio.model.arch`.

Every block is an ``nn.Sequential`` of convolution -> BatchNorm2d -> ReLU:
the predictor folds each batch norm into the convolution before it inside a
``nn.Sequential``, and the training loop polls its cancel flag at every
``nn.Sequential`` forward. Any module placed under ``encoder`` is kept when a
model is fine-tuned to new classes; everything else is rebuilt.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

#: VGG16 stages: (output channels, number of 3x3 convolutions) per stage.
VGG16_STAGES: tuple[tuple[int, int], ...] = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))


def _channels(base: int, width: float) -> int:
    """Scale a channel count by the width multiplier, keeping it a multiple of 8."""
    return max(8, math.ceil(base * width / 8.0) * 8)


def _conv_bn_relu(
    cin: int, cout: int, kernel: int = 3, relu: bool = True, dilation: int = 1
) -> list[nn.Module]:
    layers: list[nn.Module] = [
        nn.Conv2d(
            cin, cout, kernel, padding=dilation * (kernel // 2), dilation=dilation, bias=False
        ),
        nn.BatchNorm2d(cout),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return layers


def _deconv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    """DeconvNet's 3x3 stride-1 deconvolution (transposed convolution) -> BN -> ReLU."""
    return [
        nn.ConvTranspose2d(cin, cout, 3, stride=1, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    ]


def vgg16_stage_widths(width: float) -> list[tuple[int, int]]:
    """VGG16's (channels, convolutions) per stage, scaled by ``width``."""
    return [(_channels(c, width), n) for c, n in VGG16_STAGES]


def vgg16_encoder(
    in_channels: int, width: float, dilations: tuple[int, ...] = (1, 1, 1, 1, 1)
) -> nn.ModuleList:
    """VGG16-BN's 13 convolutions as five ``nn.Sequential`` stages (no pooling).

    State-dict keys are ``<stage>.<layer>.*``, the same for every network that
    uses it (SegNet, DeconvNet, FCN-8s, the dilated DeepLab/PSPNet backbone).
    """
    encoder = []
    cin = in_channels
    for (cout, n), dil in zip(vgg16_stage_widths(width), dilations, strict=True):
        layers: list[nn.Module] = []
        for _ in range(n):
            layers += _conv_bn_relu(cin, cout, dilation=dil)
            cin = cout
        encoder.append(nn.Sequential(*layers))
    return nn.ModuleList(encoder)


def kaiming_init(module: nn.Module) -> None:
    """He initialisation for convolutions (no ImageNet weights are downloaded)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def upsample_crop(x: torch.Tensor, factor: int, size: torch.Size | tuple[int, int]) -> torch.Tensor:
    """Bilinear ``factor``x upsampling, cropped to ``size``.

    With ceil-mode pooling a feature map has ``ceil(h / factor)`` rows, so the
    upsampled map covers the input and cropping keeps every pixel on the
    pooling grid (a tile predicts what the whole image would, near its centre).
    """
    if factor > 1:
        x = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
    return x[..., : size[0], : size[1]]


class _EncoderDecoderWithIndices(nn.Module):
    """Shared forward pass of SegNet-style networks: pool with indices, unpool with them.

    ``middle`` runs between the last pooling and the first unpooling (an
    identity for SegNet, DeconvNet's fully-connected-like layers).
    """

    encoder: nn.ModuleList
    decoder: nn.ModuleList
    classifier: nn.Module

    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(2, 2, ceil_mode=True, return_indices=True)
        self.middle: nn.Module = nn.Identity()

    @property
    def alignment(self) -> int:
        """Pixels per cell of the deepest pooling grid: tiles start at multiples of it."""
        return 2 ** len(self.encoder)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips: list[tuple[torch.Tensor, torch.Size]] = []
        for stage in self.encoder:
            x = stage(x)
            size = x.shape[-2:]
            x, indices = self.pool(x)
            skips.append((indices, size))
        x = self.middle(x)
        for stage, (indices, size) in zip(self.decoder, reversed(skips), strict=True):
            x = F.max_unpool2d(x, indices, 2, 2, output_size=size)
            x = stage(x)
        return self.classifier(x)


def mirrored_decoder(
    stages: list[tuple[int, int]], block: Callable[[int, int], list[nn.Module]]
) -> nn.ModuleList:
    """The decoder that mirrors a VGG encoder, deepest stage first.

    Decoder stage k mirrors encoder stage k: its layers keep the stage's
    width and the last one narrows to the next (shallower) stage's.
    """
    decoder = []
    for k in reversed(range(len(stages))):
        cout, n = stages[k]
        nxt = stages[k - 1][0] if k > 0 else cout
        layers: list[nn.Module] = []
        for i in range(n):
            layers += block(cout, nxt if i == n - 1 else cout)
        decoder.append(nn.Sequential(*layers))
    return nn.ModuleList(decoder)
