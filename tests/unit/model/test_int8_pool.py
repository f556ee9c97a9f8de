"""Int8 pooling and unpooling: exactly what float pooling of the dequantised values gives."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from segstudio.core.labelset import preset
from segstudio.model.arch import ArchSpec
from segstudio.model.files import new_model
from segstudio.model.int8_pool import pool2x2, requantize, unpool2x2
from segstudio.model.predictor import Predictor
from segstudio.model.quantize import Int8SegNet, calibrate, int8_available, with_calibration
from tests.unit.model.test_quantize import _images, _randomise_bn


def _quint8(shape: tuple[int, ...], zero_point: int, seed: int, levels: int = 8) -> torch.Tensor:
    """Channels-last quint8 with few distinct codes, so windows have ties."""
    gen = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, levels, shape, generator=gen) * (127 // levels)
    x = torch._make_per_tensor_quantized_tensor(codes.to(torch.uint8), 0.05, zero_point)
    return x.contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("size", [(8, 8), (7, 9), (1, 5), (6, 1), (33, 64)])
@pytest.mark.parametrize("zero_point", [0, 17])
def test_pool_and_unpool_equal_float_pooling(size, zero_point) -> None:
    x = _quint8((2, 5, *size), zero_point, seed=size[0] * 100 + size[1])
    pooled, where = pool2x2(x)
    ref, indices = F.max_pool2d(x.dequantize(), 2, 2, ceil_mode=True, return_indices=True)
    assert pooled.is_quantized and pooled.q_zero_point() == zero_point
    assert pooled.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(pooled.dequantize(), ref)
    # the same element of each window: ties go to the first in row-major order
    h, w = ref.shape[-2:]
    rows = torch.arange(h).view(1, 1, h, 1) * 2 + where.permute(0, 3, 1, 2).long() // 2
    cols = torch.arange(w).view(1, 1, 1, w) * 2 + where.permute(0, 3, 1, 2).long() % 2
    assert torch.equal(rows * size[1] + cols, indices)

    back = unpool2x2(pooled, where, size)
    expected = F.max_unpool2d(ref, indices, 2, 2, output_size=size)
    assert back.shape == x.shape and back.q_zero_point() == zero_point
    assert torch.equal(back.dequantize(), expected)


def test_requantize_is_quantising_the_values_again() -> None:
    x = _quint8((1, 3, 4, 4), 0, seed=1, levels=100)
    assert requantize(x, x.q_scale(), x.q_zero_point()) is x
    again = requantize(x, 0.031, 3)
    assert (again.q_scale(), again.q_zero_point()) == (0.031, 3)
    expected = torch.quantize_per_tensor(x.dequantize(), 0.031, 3, torch.quint8)
    assert torch.equal(again.int_repr(), expected.int_repr())


@pytest.mark.skipif(not int8_available(), reason="no oneDNN int8 engine here")
def test_int8_segnet_equals_the_network_that_pools_in_float(monkeypatch) -> None:
    """The whole network, odd sizes included: the same logits, to the bit."""

    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    torch.manual_seed(0)
    model = new_model(ArchSpec("segnet", {"width": 0.125}), preset("camvid11"))
    _randomise_bn(model.network)
    model = with_calibration(model, calibrate(model, _images(4)))
    predictor = Predictor(model, device="cpu")
    assert predictor.path == "int8-onednn" and isinstance(predictor.network, Int8SegNet)
    converted = predictor.network.net  # the stages with float pooling between them
    for rgb in _images(3, (77, 101), seed=2):
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            assert torch.equal(predictor.network(x), converted(x))
    assert np.all(predictor.predict(_images(1)[0]).labels < 11)
