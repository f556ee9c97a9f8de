"""U-Net, FCN-8s, DeconvNet, DeepLab and PSPNet, registered in :mod:`segstudio.model.arch`.

Every network takes any height x width and returns logits of exactly that
size: pooling uses ``ceil_mode`` so a feature map has ``ceil(h / stride)``
rows, upsampled maps cover the input and are cropped to it. Layers are
``nn.Sequential`` blocks of conv -> BatchNorm2d -> ReLU (foldable by the
predictor, polled for cancel by the training loop), the backbone lives under
``encoder`` (kept when fine-tuning to new classes) and everything else
(decoder, heads, classifier) elsewhere. Weights start from He
initialisation; nothing is downloaded.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from segstudio.model.layers import (
    _channels,
    _conv_bn_relu,
    _deconv_bn_relu,
    _EncoderDecoderWithIndices,
    kaiming_init,
    mirrored_decoder,
    upsample_crop,
    vgg16_encoder,
    vgg16_stage_widths,
)


class UNet(nn.Module):
    """U-Net (Ronneberger et al., 2015) with batch norm and padded convolutions.

    ``depth`` max-poolings, each stage two 3x3 conv-BN-ReLU; the decoder
    upsamples with a 2x2 stride-2 transposed convolution, crops to the skip's
    size (ceil-mode pooling makes the upsampled map at most one pixel larger)
    and concatenates it before two more 3x3 conv-BN-ReLU.

    Parameters
    ----------
    num_classes
        Number of output classes.
    width
        Channel multiplier on the paper's 64 base channels (64 .. 1024 at 1.0).
    in_channels
        Input channels (3 for RGB).
    depth
        Number of poolings (4 in the paper).
    """

    def __init__(
        self, num_classes: int, width: float = 0.5, in_channels: int = 3, depth: int = 4
    ) -> None:
        super().__init__()
        chans = [_channels(64 * 2**i, width) for i in range(depth + 1)]
        self.depth = depth
        self.pool = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.encoder = nn.ModuleList(
            nn.Sequential(
                *_conv_bn_relu(in_channels if i == 0 else chans[i - 1], chans[i]),
                *_conv_bn_relu(chans[i], chans[i]),
            )
            for i in range(depth + 1)
        )
        # up[k] / decoder[k] go from level depth-k to depth-k-1
        self.up = nn.ModuleList(
            nn.Sequential(nn.ConvTranspose2d(chans[i + 1], chans[i], 2, stride=2))
            for i in reversed(range(depth))
        )
        self.decoder = nn.ModuleList(
            nn.Sequential(
                *_conv_bn_relu(2 * chans[i], chans[i]), *_conv_bn_relu(chans[i], chans[i])
            )
            for i in reversed(range(depth))
        )
        self.classifier = nn.Conv2d(chans[0], num_classes, 1)
        kaiming_init(self)

    @property
    def alignment(self) -> int:
        return 2**self.depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, stage in enumerate(self.encoder):
            if i > 0:
                x = self.pool(x)
            x = stage(x)
            skips.append(x)
        skips.pop()
        for up, stage in zip(self.up, self.decoder, strict=True):
            skip = skips.pop()
            x = up(x)[..., : skip.shape[-2], : skip.shape[-1]]
            x = stage(torch.cat([skip, x], dim=1))
        return self.classifier(x)


def _bilinear_kernel(channels: int, kernel: int) -> torch.Tensor:
    """Weights that make a per-channel transposed convolution bilinear upsampling."""
    factor = (kernel + 1) // 2
    center = factor - 1 if kernel % 2 == 1 else factor - 0.5
    og = torch.arange(kernel, dtype=torch.float32)
    filt = 1 - (og - center).abs() / factor
    weight = torch.zeros(channels, channels, kernel, kernel)
    weight[range(channels), range(channels)] = filt[:, None] * filt[None, :]
    return weight


class FCN8s(nn.Module):
    """FCN-8s (Long, Shelhamer, Darrell, 2015) on a VGG16-BN backbone.

    The encoder is SegNet's (five VGG16-BN stages, ceil-mode max pooling).
    The paper's fc6 (7x7, 4096) and fc7 (1x1, 4096) become a 3x3 and a 1x1
    conv-BN-ReLU of ``1024 * width`` channels, which keeps the network light
    on a CPU. Class scores from pool5 are upsampled 2x (a transposed
    convolution initialised to bilinear), added to the scores from pool4,
    upsampled 2x again, added to the scores from pool3, then upsampled 8x
    bilinearly (fixed, as in the paper) and cropped to the input's size.
    """

    def __init__(self, num_classes: int, width: float = 0.5, in_channels: int = 3) -> None:
        super().__init__()
        stages = vgg16_stage_widths(width)
        self.encoder = vgg16_encoder(in_channels, width)
        self.pool = nn.MaxPool2d(2, 2, ceil_mode=True)
        fc = _channels(1024, width)
        self.fc = nn.Sequential(
            *_conv_bn_relu(stages[4][0], fc, 3), *_conv_bn_relu(fc, fc, 1), nn.Dropout2d(0.1)
        )
        self.score_fr = nn.Conv2d(fc, num_classes, 1)
        self.score_pool4 = nn.Conv2d(stages[3][0], num_classes, 1)
        self.score_pool3 = nn.Conv2d(stages[2][0], num_classes, 1)
        self.up_pool5 = nn.ConvTranspose2d(num_classes, num_classes, 4, 2, 1, bias=False)
        self.up_pool4 = nn.ConvTranspose2d(num_classes, num_classes, 4, 2, 1, bias=False)
        kaiming_init(self)
        with torch.no_grad():
            for up in (self.up_pool5, self.up_pool4):
                up.weight.copy_(_bilinear_kernel(num_classes, 4))

    @property
    def alignment(self) -> int:
        return 32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        pooled = []
        for stage in self.encoder:
            x = self.pool(stage(x))
            pooled.append(x)
        pool3, pool4 = pooled[2], pooled[3]
        score = self.score_fr(self.fc(x))
        score = self.up_pool5(score)[..., : pool4.shape[-2], : pool4.shape[-1]]
        score = score + self.score_pool4(pool4)
        score = self.up_pool4(score)[..., : pool3.shape[-2], : pool3.shape[-1]]
        score = score + self.score_pool3(pool3)
        return upsample_crop(score, 8, size)


class DeconvNet(_EncoderDecoderWithIndices):
    """DeconvNet (Noh, Hong, Han, 2015): SegNet's forward pass with deconvolutions.

    VGG16-BN encoder whose pooling indices drive unpooling (shared with
    SegNet); the middle stands in for the paper's fc6 (7x7, 4096) / fc7
    (1x1, 4096) / deconv-fc6 (7x7) with a 3x3 conv, a 1x1 conv and a 3x3
    deconvolution of ``1024 * width`` channels, padded so any input size
    works and light enough for a CPU. The decoder mirrors the encoder with
    3x3 stride-1 deconvolutions (transposed convolutions), each followed by
    BN and ReLU, and a 1x1 classifier.
    """

    def __init__(self, num_classes: int, width: float = 0.5, in_channels: int = 3) -> None:
        super().__init__()
        stages = vgg16_stage_widths(width)
        self.encoder = vgg16_encoder(in_channels, width)
        fc, top = _channels(1024, width), stages[4][0]
        self.middle = nn.Sequential(
            *_conv_bn_relu(top, fc, 3), *_conv_bn_relu(fc, fc, 1), *_deconv_bn_relu(fc, top)
        )
        self.decoder = mirrored_decoder(stages, _deconv_bn_relu)
        self.classifier = nn.Conv2d(stages[0][0], num_classes, 1)
        kaiming_init(self)


class DilatedVGG(nn.ModuleList):
    """VGG16-BN with its last pooling(s) removed and later stages dilated.

    Output stride 16 drops pool5 (no stage follows it, so nothing needs
    dilation); output stride 8 also drops pool4 and dilates stage 5 by 2, so
    every later layer keeps the receptive field it had with the pooling. The
    state-dict keys are those of :func:`vgg16_encoder` (``<stage>.<layer>.*``).
    """

    def __init__(self, in_channels: int, width: float, output_stride: int) -> None:
        dilations = (1, 1, 1, 1, 2) if output_stride == 8 else (1, 1, 1, 1, 1)
        super().__init__(vgg16_encoder(in_channels, width, dilations))
        self.output_stride = output_stride
        self.pools = {8: 3, 16: 4}[output_stride]
        self.out_channels = vgg16_stage_widths(width)[4][0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        for i, stage in enumerate(self):
            x = stage(x)
            if i < self.pools:  # functional: a pooling module would join the list
                x = F.max_pool2d(x, 2, 2, ceil_mode=True)
        return x


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling (DeepLabv3): a 1x1 conv, three 3x3 atrous
    convs and image pooling, concatenated and projected by a 1x1 conv.

    The image-pooling branch has no batch norm: over a 1x1 map it would see a
    single value per channel when training on one image, which BN refuses.
    """

    def __init__(self, cin: int, cout: int, rates: tuple[int, int, int]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            [nn.Sequential(*_conv_bn_relu(cin, cout, 1))]
            + [nn.Sequential(*_conv_bn_relu(cin, cout, 3, dilation=r)) for r in rates]
        )
        self.image_pool = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1), nn.ReLU(inplace=True)
        )
        self.project = nn.Sequential(*_conv_bn_relu(5 * cout, cout, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [branch(x) for branch in self.branches]
        outs.append(self.image_pool(x).expand(-1, -1, *x.shape[-2:]))
        return self.project(torch.cat(outs, dim=1))


class _DilatedSegmenter(nn.Module):
    """Dilated backbone -> context module -> 3x3 head -> classifier -> upsample and crop
    (the shape DeepLab and PSPNet share; they differ in ``context``)."""

    encoder: nn.Module
    context: nn.Module
    head: nn.Module
    classifier: nn.Module

    @property
    def alignment(self) -> int:
        return self.encoder.output_stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        x = self.classifier(self.head(self.context(self.encoder(x))))
        return upsample_crop(x, self.encoder.output_stride, size)


class DeepLab(_DilatedSegmenter):
    """DeepLabv3-style network on a dilated VGG16-BN backbone.

    Backbone at output stride 8 (default) or 16, ASPP with rates 6/12/18 at
    stride 16 and doubled (12/24/36) at stride 8 as in the DeepLabv3 paper,
    a 3x3 conv-BN-ReLU, a 1x1 classifier and bilinear upsampling cropped to
    the input's size.
    """

    def __init__(
        self, num_classes: int, width: float = 0.5, in_channels: int = 3, output_stride: int = 8
    ) -> None:
        super().__init__()
        self.encoder = DilatedVGG(in_channels, width, output_stride)
        ch = _channels(256, width)
        rates = (6, 12, 18) if output_stride == 16 else (12, 24, 36)
        self.context = ASPP(self.encoder.out_channels, ch, rates)
        self.head = nn.Sequential(*_conv_bn_relu(ch, ch, 3))
        self.classifier = nn.Conv2d(ch, num_classes, 1)
        kaiming_init(self)


class PyramidPooling(nn.Module):
    """PSPNet's pyramid pooling: average-pool to bins x bins, 1x1 conv, upsample, concat.

    The 1x1 bin has no batch norm, for the reason given in :class:`ASPP`.
    """

    def __init__(self, cin: int, bins: tuple[int, ...] = (1, 2, 3, 6)) -> None:
        super().__init__()
        cout = _channels(cin // len(bins), 1.0)
        self.stages = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(b), nn.Conv2d(cin, cout, 1), nn.ReLU(inplace=True))
            if b == 1
            else nn.Sequential(nn.AdaptiveAvgPool2d(b), *_conv_bn_relu(cin, cout, 1))
            for b in bins
        )
        self.out_channels = cin + len(bins) * cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        outs = [x]
        for stage in self.stages:
            outs.append(F.interpolate(stage(x), size, mode="bilinear", align_corners=False))
        return torch.cat(outs, dim=1)


class PSPNet(_DilatedSegmenter):
    """PSPNet-style network (Zhao et al., 2017) on DeepLab's dilated VGG16-BN backbone.

    Pyramid pooling with bins 1, 2, 3, 6 (each reduced to a quarter of the
    backbone's channels), a 3x3 conv-BN-ReLU of ``512 * width`` channels, a
    1x1 classifier and bilinear upsampling cropped to the input's size. No
    auxiliary loss branch.
    """

    def __init__(
        self, num_classes: int, width: float = 0.5, in_channels: int = 3, output_stride: int = 8
    ) -> None:
        super().__init__()
        self.encoder = DilatedVGG(in_channels, width, output_stride)
        self.context = PyramidPooling(self.encoder.out_channels)
        ch = _channels(512, width)
        self.head = nn.Sequential(
            *_conv_bn_relu(self.context.out_channels, ch, 3), nn.Dropout2d(0.1)
        )
        self.classifier = nn.Conv2d(ch, num_classes, 1)
        kaiming_init(self)
