"""Every architecture takes any height x width and returns exactly that size."""

from __future__ import annotations

import pytest
import torch

from segstudio.core.errors import ArchitectureError
from segstudio.model.arch import (
    ARCHITECTURES,
    ArchSpec,
    SegNet,
    build_model,
    count_parameters,
    resolve_spec,
)

ODD_SIZES = [(360, 480), (77, 1023), (45, 45), (1, 1), (23, 5), (17, 64)]
LIGHT = {
    "segnet": {"width": 0.125},
    "segnet_basic": {"width": 0.25},
    **{name: {"width": 0.125} for name in ("unet", "fcn8s", "deconvnet", "deeplab", "pspnet")},
}


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
@pytest.mark.parametrize(("h", "w"), ODD_SIZES)
def test_output_has_input_size(name: str, h: int, w: int) -> None:
    net = build_model(ArchSpec(name, LIGHT[name]), num_classes=7).eval()
    with torch.no_grad():
        out = net(torch.randn(1, 3, h, w))
    assert out.shape == (1, 7, h, w)
    assert torch.isfinite(out).all()


def test_full_segnet_is_the_papers_network() -> None:
    net = build_model(ArchSpec("segnet"), num_classes=11)
    convs = [m for m in net.encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 13  # VGG16's 13 convolutions
    assert [c.out_channels for c in convs] == [64] * 2 + [128] * 2 + [256] * 3 + [512] * 6
    dec = [m for m in net.decoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(dec) == 13
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules()) == 26
    # about 29.4 M parameters, as the paper's SegNet
    assert 29_000_000 < count_parameters(net) < 30_000_000
    with torch.no_grad():
        out = net.eval()(torch.randn(1, 3, 360, 480))
    assert out.shape == (1, 11, 360, 480)


def test_unpooling_uses_the_encoders_indices() -> None:
    """A decoder fed through unpooling puts values back where the maxima were."""
    net = SegNet(num_classes=2, width=0.125).eval()
    x = torch.randn(1, 3, 45, 22)
    captured: list[torch.Tensor] = []
    orig = net.pool.forward

    def spy(inp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out, idx = orig(inp)
        captured.append(idx)
        return out, idx

    net.pool.forward = spy  # type: ignore[method-assign]
    with torch.no_grad():
        net(x)
    assert len(captured) == 5
    # each index addresses a position of the pre-pool map, e.g. 45 x 22 for the first stage
    assert int(captured[0].max()) < 45 * 22


def test_width_multiplier_makes_lighter_networks() -> None:
    full = count_parameters(build_model(ArchSpec("segnet"), 11))
    half = count_parameters(build_model(ArchSpec("segnet", {"width": 0.5}), 11))
    quarter = count_parameters(build_model(ArchSpec("segnet", {"width": 0.25}), 11))
    assert full > 3 * half > 9 * quarter


def test_spec_is_resolved_with_defaults_and_validated() -> None:
    assert resolve_spec(ArchSpec("segnet")).params == {"width": 1.0, "in_channels": 3}
    with pytest.raises(ArchitectureError, match="unknown architecture 'segnot'"):
        resolve_spec(ArchSpec("segnot"))
    with pytest.raises(ArchitectureError, match="no parameter"):
        resolve_spec(ArchSpec("segnet", {"depth": 3}))
    with pytest.raises(ArchitectureError, match="bad value"):
        resolve_spec(ArchSpec("segnet", {"width": -1}))
    with pytest.raises(ArchitectureError, match="num_classes"):
        build_model(ArchSpec("segnet"), 0)
    assert ArchSpec.from_dict(ArchSpec("segnet", {"width": 0.5}).to_dict()) == ArchSpec(
        "segnet", {"width": 0.5}
    )
