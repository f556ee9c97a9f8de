"""The live learner's network: a frozen SegNet as a feature extractor, a small head on top.

:class:`LiveNet` runs a trained SegNet (the bundled model, or a SegNet of
the project) unchanged and reads it at every scale: the input, the output of
each encoder stage (before its pooling), the decoder's last features and the
network's own class scores. A per-pixel head, one hidden layer of ReLUs,
turns those into the project's classes:

``logits = W2 relu(sum_k up(P_k f_k) + b1) + b2 + up(L · base_scores)``

``P_k`` is the first layer's block for tap ``k``: applying it at the tap's
own resolution and then upsampling gives the same numbers as upsampling the
tap and applying it at full resolution (both are linear), at a fraction of
the cost. ``L`` maps the base network's classes to the project's; for a
project with the base's own classes it starts as the identity, so an
untrained head predicts exactly what the base network does, and the head
learns the corrections.

Only the head is trained (in seconds, by :mod:`segstudio.training.live`),
the base stays frozen; the whole thing is an ordinary ``nn.Module``, so a
live model is saved, loaded, predicted with and evaluated like any other.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from segstudio.core.errors import ModelFileError
from segstudio.core.labelset import LabelSet, LabelSetError
from segstudio.model.arch import ArchSpec, build_model
from segstudio.model.files import LoadedModel, ModelInfo

#: Downsampling factor of each network tap: the input, encoder stages 1..5, decoder's last.
NET_STRIDES: tuple[int, ...] = (1, 1, 2, 4, 8, 16, 1)


class LiveNet(nn.Module):
    """A frozen SegNet (``base``) and a trainable per-pixel head.

    Parameters
    ----------
    num_classes : int
        The project's classes.
    base_classes : int
        Classes of the base SegNet.
    base_width : float
        Width of the base SegNet.
    in_channels : int
        Input channels.
    hidden : int
        Units of the head's hidden layer.
    colour_strides : tuple of int
        The input averaged over cells of these sizes is a tap too (the colour
        around a pixel at several scales, as ilastik's smoothed channels).
    decoder : bool
        Read the decoder too (its last features and the class scores). A
        project whose classes the base does not know can do without: the
        encoder alone costs less than half the time.
    smooth : int
        Side of a box filter over the logits (1: none). Without the decoder the
        coarse features leave specks that each cost the labeller a stroke.
    """

    def __init__(
        self,
        num_classes: int,
        base_classes: int = 11,
        base_width: float = 0.5,
        in_channels: int = 3,
        hidden: int = 64,
        colour_strides: tuple[int, ...] = (4, 16, 64),
        decoder: bool = True,
        smooth: int = 1,
    ) -> None:
        super().__init__()
        self.smooth = int(smooth)
        self.colour_strides = tuple(int(s) for s in colour_strides)
        self.decoder = bool(decoder)
        net_strides = NET_STRIDES if self.decoder else NET_STRIDES[:-1]
        self.strides = net_strides + self.colour_strides
        self.base = build_model(
            ArchSpec("segnet", {"width": base_width, "in_channels": in_channels}), base_classes
        )
        widths = [in_channels]
        widths += [stage[-2].num_features for stage in self.base.encoder]  # type: ignore[index]
        if self.decoder:
            widths.append(self.base.classifier.in_channels)
        widths += [in_channels] * len(self.colour_strides)
        self.tap_channels: tuple[int, ...] = tuple(widths)
        self.project = nn.ModuleList(
            nn.Conv2d(c, hidden, 1, bias=(k == 0)) for k, c in enumerate(self.tap_channels)
        )
        self.out = nn.Conv2d(hidden, num_classes, 1)
        self.from_base = nn.Conv2d(base_classes, num_classes, 1, bias=False)
        # untrained, the head adds nothing: the logits are the base's, mapped by from_base
        for p in (self.out.weight, self.out.bias, self.from_base.weight):
            nn.init.zeros_(p)
        for p in self.base.parameters():
            p.requires_grad_(False)

    @property
    def alignment(self) -> int:
        return max(self.base.alignment, *self.colour_strides, 1)

    @property
    def feature_dim(self) -> int:
        return sum(self.tap_channels)

    def train(self, mode: bool = True) -> LiveNet:
        super().train(mode)
        self.base.eval()  # frozen: its batch norms keep their statistics
        return self

    def taps(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """The base network's features at every scale, and its class scores (None
        without the decoder)."""
        base = self.base
        feats = [x]
        skips = []
        h = x
        for stage in base.encoder:
            h = stage(h)
            feats.append(h)
            size = h.shape[-2:]
            h, indices = base.pool(h)
            skips.append((indices, size))
        colour = [F.avg_pool2d(x, s, s, ceil_mode=True) for s in self.colour_strides]
        if not self.decoder:
            return feats + colour, None
        h = base.middle(h)
        for stage, (indices, size) in zip(base.decoder, reversed(skips), strict=True):
            h = F.max_unpool2d(h, indices, 2, 2, output_size=size)
            h = stage(h)
        feats.append(h)
        return feats + colour, base.classifier(h)

    def head(
        self, feats: Sequence[torch.Tensor], scores: torch.Tensor | None, size: tuple[int, int]
    ) -> torch.Tensor:
        """Class logits at ``size`` from the taps.

        Each tap is projected at its own scale, the projections of one scale are
        summed, and each sum is upsampled once (all of it linear, so the same as
        projecting the upsampled taps, at a fraction of the cost).
        """
        by_stride: dict[int, torch.Tensor] = {}
        for proj, f, stride in zip(self.project, feats, self.strides, strict=True):
            z = proj(f)
            by_stride[stride] = z if stride not in by_stride else by_stride[stride] + z
        hidden: torch.Tensor | None = None
        for stride, z in by_stride.items():
            if stride > 1:
                z = F.interpolate(z, scale_factor=stride, mode="bilinear", align_corners=False)
            z = z[..., : size[0], : size[1]]
            hidden = z if hidden is None else hidden.add_(z)
        assert hidden is not None
        logits = self.out(F.relu_(hidden))
        return logits if scores is None else logits + self.from_base(scores)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats, scores = self.taps(x)
        logits = self.head(feats, scores, (x.shape[-2], x.shape[-1]))
        if self.smooth > 1:
            k = self.smooth
            logits = F.avg_pool2d(logits, k, 1, k // 2, count_include_pad=False)
        return logits


def gather_taps(
    feats: Sequence[torch.Tensor],
    scores: torch.Tensor | None,
    ys: torch.Tensor,
    xs: torch.Tensor,
    strides: Sequence[int],
) -> tuple[torch.Tensor, torch.Tensor]:
    """The tap features and base scores of single pixels, as :meth:`LiveNet.head` sees them.

    Parameters
    ----------
    feats, scores
        What :meth:`LiveNet.taps` returned for one image (batch of 1).
    ys, xs
        Pixel rows and columns, ``(N,)`` integer tensors.
    strides
        Each tap's downsampling factor (:attr:`LiveNet.strides`).

    Returns
    -------
    ``(N, feature_dim)`` and ``(N, base_classes)`` float32: bilinear samples at
    the same source positions as :func:`torch.nn.functional.interpolate` with
    ``scale_factor=stride`` uses (edges clamped), so a head trained on them
    predicts what the dense forward pass predicts.
    """
    out = []
    for f, stride in zip(feats, strides, strict=True):
        h, w = f.shape[-2:]
        gy = (ys.float() + 0.5) / stride / h * 2 - 1
        gx = (xs.float() + 0.5) / stride / w * 2 - 1
        grid = torch.stack([gx, gy], -1).view(1, 1, -1, 2).to(f.dtype)
        s = F.grid_sample(f, grid, mode="bilinear", padding_mode="border", align_corners=False)
        out.append(s[0, :, 0].T)
    if scores is None:
        return torch.cat(out, 1).float(), torch.zeros(len(ys), 0)
    picked = scores[0][:, ys, xs].T
    return torch.cat(out, 1).float(), picked.float()


def base_model(live: LoadedModel) -> LoadedModel:
    """The frozen SegNet inside a live model, as a model of its own (a copy whose
    weights train again, like any loaded model's: a deep fine-tune starts from it).

    Its ``path`` is the live model's file, where this network is stored, so a
    model trained from it names that file as its parent.

    Raises
    ------
    ModelFileError
        The live model does not record its base's classes.
    """
    import copy

    net: LiveNet = live.network  # type: ignore[assignment]
    raw = live.info.provenance.get("base_classes")
    try:
        labelset = LabelSet.from_dict(raw)
    except (LabelSetError, TypeError, AttributeError) as exc:
        raise ModelFileError("this live model does not record its base network's classes") from exc
    params = live.info.arch.params
    spec = ArchSpec("segnet", {"width": params["base_width"], "in_channels": params["in_channels"]})
    parent = live.info.provenance.get("parent") or {}
    info = ModelInfo(
        spec, labelset, live.info.normalization, {"kind": "base of a live model", **parent}
    )
    network = copy.deepcopy(net.base).eval().requires_grad_(True)
    return LoadedModel(info, network, live.path)
