"""The architecture registry and every network in it: any height x width in, the
same size out; SegNet is the paper's network; the newer ones (U-Net, FCN-8s,
DeconvNet, DeepLab, PSPNet) train, fold, save, predict, and keep their encoder
apart."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from segstudio.core.errors import ArchitectureError
from segstudio.core.labelset import preset
from segstudio.model.arch import (
    ARCHITECTURES,
    ArchSpec,
    SegNet,
    build_model,
    count_parameters,
    resolve_spec,
)
from segstudio.model.files import load_model, new_model, save_model
from segstudio.model.predictor import Predictor, fold_batchnorm

NEW = ["unet", "fcn8s", "deconvnet", "deeplab", "pspnet"]
ODD_SIZES = [(360, 480), (77, 1023), (45, 45), (1, 1), (23, 5), (17, 64)]
SIZES = [(77, 1023), (45, 45), (23, 5), (1, 1)]
ALIGNMENT = {"unet": 16, "fcn8s": 32, "deconvnet": 32, "deeplab": 8, "pspnet": 8}
LIGHT = {
    "segnet": {"width": 0.125},
    "segnet_basic": {"width": 0.25},
    **{name: {"width": 0.125} for name in NEW},
}


def _net(name: str, classes: int = 5, **params: object) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(ArchSpec(name, {**LIGHT[name], **params}), classes)


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


@pytest.mark.parametrize("name", NEW)
def test_registered_with_cpu_friendly_defaults(name: str) -> None:
    params = resolve_spec(ArchSpec(name)).params
    assert params["width"] == 0.5 and params["in_channels"] == 3
    assert ARCHITECTURES[name].description


@pytest.mark.parametrize("name", NEW)
def test_alignment_and_any_size_in_training_mode(name: str) -> None:
    net = _net(name)
    assert net.alignment == ALIGNMENT[name]
    for h, w in SIZES:
        # train mode with two images: batch norm sees > 1 value even on a 1 x 1 input
        out = net.train()(torch.randn(2, 3, h, w))
        assert out.shape == (2, 5, h, w)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("unet", {"depth": 2}),
        ("deeplab", {"output_stride": 16}),
        ("pspnet", {"output_stride": 16}),
        ("unet", {"in_channels": 1}),
    ],
)
def test_variants(name: str, params: dict) -> None:
    net = _net(name, **params).eval()
    cin = int(params.get("in_channels", 3))
    with torch.no_grad():
        out = net(torch.randn(1, cin, 37, 50))
    assert out.shape == (1, 5, 37, 50)
    if "depth" in params:
        assert net.alignment == 4
    if "output_stride" in params:
        assert net.alignment == 16


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_training_step_reduces_loss(name: str) -> None:
    net = _net(name, classes=3).train()
    x = torch.randn(2, 3, 33, 47)
    y = torch.randint(0, 3, (2, 33, 47))
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    losses = []
    for _ in range(6):
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("name", NEW)
def test_batchnorm_folds_into_every_convolution(name: str) -> None:
    net = _net(name).train()
    with torch.no_grad():  # give the batch norms non-trivial running statistics
        for _ in range(3):
            net(torch.randn(2, 3, 40, 52) * 2 + 0.5)
    net.eval()
    x = torch.randn(1, 3, 45, 61)
    folded = fold_batchnorm(copy.deepcopy(net))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    with torch.no_grad():
        ref, out = net(x), folded(x)
    assert torch.allclose(out, ref, atol=1e-4 * (1 + ref.abs().max().item()))


@pytest.mark.parametrize("name", NEW)
def test_encoder_is_apart_from_the_rest(name: str) -> None:
    keys = list(_net(name).state_dict())
    assert any(k.startswith("encoder.") for k in keys)
    assert any(not k.startswith("encoder.") for k in keys)
    # a head for other classes changes no encoder tensor's shape
    other = _net(name, classes=9).state_dict()
    mine = _net(name).state_dict()
    for k, v in mine.items():
        if k.startswith("encoder."):
            assert other[k].shape == v.shape
        elif v.shape != other[k].shape:
            assert not k.startswith("encoder.")


@pytest.mark.parametrize("name", NEW)
def test_save_load_and_predict(name: str, tmp_path) -> None:
    labelset = preset("camvid11")
    model = new_model(ArchSpec(name, LIGHT[name]), labelset, seed=3)
    path = save_model(tmp_path / f"{name}.safetensors", model)
    loaded = load_model(path)
    assert loaded.info.arch == resolve_spec(ArchSpec(name, LIGHT[name]))
    x = torch.randn(1, 3, 29, 41)
    with torch.no_grad():
        assert torch.equal(model.network(x), loaded.network(x))
    rgb = np.random.default_rng(0).integers(0, 256, (45, 70, 3), dtype=np.uint8)
    pred = Predictor(loaded, device="cpu").predict(rgb)
    assert pred.labels.shape == (45, 70) and pred.labels.max() < 11
    assert np.isfinite(pred.confidence.astype(np.float32)).all()
    # tiled: tiles start on the pooling grid
    tiled = Predictor(loaded, device="cpu", precision="fp32", tile=128, overlap=16)
    assert tiled.predict(np.zeros((150, 300, 3), np.uint8)).labels.shape == (150, 300)


def test_the_cli_offers_every_architecture() -> None:
    from segstudio.cli.model import _ARCH_NAMES

    assert _ARCH_NAMES.split(", ") == list(ARCHITECTURES)
