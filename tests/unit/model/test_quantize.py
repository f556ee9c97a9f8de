"""Int8 inference: calibration, the int8 network, and the Predictor's choice with fallback."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segstudio.core.labelset import preset
from segstudio.model.arch import ArchSpec
from segstudio.model.files import load_model, new_model, save_model
from segstudio.model.predictor import DeviceError, PredictionCancelled, Predictor
from segstudio.model.quantize import (
    QuantizationUnavailable,
    calibrate,
    calibration_of,
    int8_available,
    quantizable,
    with_calibration,
)

needs_int8 = pytest.mark.skipif(not int8_available(), reason="no oneDNN int8 engine here")


def _images(n: int, size: tuple[int, int] = (72, 96), seed: int = 0) -> list[np.ndarray]:
    """Smooth colour fields with a few blocks: structured like photos, not noise."""
    rng = np.random.default_rng(seed)
    h, w = size
    xx = np.mgrid[0:h, 0:w][1].astype(np.float32)
    out = []
    for _ in range(n):
        img = np.stack(
            [128 + 100 * np.sin(xx / rng.uniform(5, 30) + rng.uniform(0, 6)) for _ in range(3)], -1
        )
        for _ in range(4):
            y0, x0 = rng.integers(0, h - 16), rng.integers(0, w - 16)
            img[y0 : y0 + 16, x0 : x0 + 16] = rng.uniform(0, 255, 3)
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return out


def _randomise_bn(net: torch.nn.Module) -> None:
    gen = torch.Generator().manual_seed(0)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)


@pytest.fixture(scope="module", params=["segnet", "segnet_basic"])
def model(request):
    spec = (
        ArchSpec("segnet", {"width": 0.125})
        if request.param == "segnet"
        else ArchSpec("segnet_basic", {"width": 0.25, "depth": 2})
    )
    torch.manual_seed(0)
    m = new_model(spec, preset("camvid11"))
    _randomise_bn(m.network)
    return m


@pytest.fixture(scope="module")
def calibrated(model):
    return with_calibration(model, calibrate(model, _images(4)))


@pytest.fixture
def no_bf16(monkeypatch):
    """Emulate a CPU without bf16 units (as the AVX2 cap does)."""
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")


def test_segnet_family_is_quantizable_and_others_are_not() -> None:
    for spec in (ArchSpec("segnet", {"width": 0.125}), ArchSpec("segnet_basic", {"width": 0.25})):
        assert quantizable(new_model(spec, preset("camvid11")).network)
    for spec in (ArchSpec("unet", {"width": 0.125}), ArchSpec("deconvnet", {"width": 0.125})):
        assert not quantizable(new_model(spec, preset("camvid11")).network)


def test_calibration_is_json_and_survives_the_model_file(calibrated, tmp_path) -> None:
    cal = calibration_of(calibrated)
    assert cal is not None and cal["images"] == 4
    lo_hi = list(cal["ranges"].values())
    assert lo_hi and all(lo <= 0.0 <= hi and hi > lo for lo, hi in lo_hi)
    path = save_model(tmp_path / "m.safetensors", calibrated)
    assert calibration_of(load_model(path)) == cal


def test_calibrating_a_network_without_an_int8_path_is_refused() -> None:
    unet = new_model(ArchSpec("unet", {"width": 0.125}), preset("camvid11"))
    with pytest.raises(QuantizationUnavailable):
        calibrate(unet, _images(1))


@needs_int8
def test_int8_gives_the_same_classes_as_fp32(calibrated, no_bf16) -> None:
    fp32 = Predictor(calibrated, device="cpu", precision="fp32")
    auto = Predictor(calibrated, device="cpu")
    assert (fp32.path, auto.path) == ("fp32", "int8-onednn")
    assert "int8-onednn" in repr(auto)
    agree = []
    for rgb in _images(3, (77, 101), seed=1):  # odd sizes: ceil-mode pooling and unpooling
        a, b = fp32.predict(rgb), auto.predict(rgb)
        assert b.labels.shape == rgb.shape[:2] and b.labels.dtype == np.uint8
        assert b.confidence.dtype == np.float16
        assert set(np.unique(b.labels)) <= set(range(calibrated.info.labelset.num_classes))
        conf = b.confidence.astype(np.float32)
        assert np.all((conf > 0) & (conf <= 1.0))
        agree.append(np.mean(a.labels == b.labels))
    assert np.mean(agree) >= 0.9, agree


@needs_int8
def test_int8_tiles_a_large_image(calibrated, no_bf16) -> None:
    pred = Predictor(calibrated, device="cpu", tile=128)
    assert pred.path == "int8-onednn"
    rgb = _images(1, (200, 300))[0]
    out = pred.predict(rgb)
    assert pred.tile_count(200, 300) > 1 and out.labels.shape == (200, 300)


@needs_int8
def test_int8_prediction_can_be_cancelled(calibrated, no_bf16) -> None:
    pred = Predictor(calibrated, device="cpu")
    calls = 0

    def cancelled() -> bool:
        nonlocal calls
        calls += 1
        return calls > 3  # lets the first layers run, then cancels

    with pytest.raises(PredictionCancelled):
        pred.predict(_images(1)[0], cancelled=cancelled)


def test_a_model_without_calibration_falls_back_to_fp32(model, no_bf16) -> None:
    assert calibration_of(model) is None
    assert Predictor(model, device="cpu").path == "fp32"
    with pytest.raises(DeviceError, match="int8"):
        Predictor(model, device="cpu", precision="int8")


def test_no_int8_engine_falls_back_to_fp32(calibrated, no_bf16, monkeypatch) -> None:
    monkeypatch.setattr("segstudio.model.quantize.int8_available", lambda: False)
    pred = Predictor(calibrated, device="cpu")
    assert pred.path == "fp32"
    assert pred.predict(_images(1)[0]).labels.shape == (72, 96)
    with pytest.raises(DeviceError, match="int8"):
        Predictor(calibrated, device="cpu", precision="int8")


def test_a_failing_int8_build_falls_back_to_fp32(calibrated, no_bf16, monkeypatch) -> None:
    def broken(*_args: object) -> None:
        raise ImportError("torch.ao.quantization is gone")

    monkeypatch.setattr("segstudio.model.quantize.quantize_network", broken)
    assert Predictor(calibrated, device="cpu").path == "fp32"


def test_a_calibration_for_another_network_falls_back(model, calibrated, no_bf16) -> None:
    other = new_model(ArchSpec("segnet_basic", {"width": 0.25, "depth": 3}), preset("camvid11"))
    stale = with_calibration(other, calibration_of(calibrated))
    assert Predictor(stale, device="cpu").path == "fp32"


def test_explicit_fp32_never_quantises(calibrated, no_bf16) -> None:
    assert Predictor(calibrated, device="cpu", precision="fp32").path == "fp32"


@needs_int8
def test_without_amx_int8_beats_bf16_and_with_amx_bf16_runs(model, calibrated, monkeypatch) -> None:
    """An AVX512-BF16 CPU without AMX runs a calibrated model in int8 (faster there),
    falling back to bf16, not fp32; a CPU with AMX runs bf16."""
    import segstudio.model.predictor as predictor_module

    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.setattr(predictor_module, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setattr(predictor_module, "cpu_has_amx", lambda: False)
    assert Predictor(calibrated, device="cpu").path == "int8-onednn"
    assert Predictor(model, device="cpu").path == "bf16"  # no calibration
    assert Predictor(calibrated, device="cpu", precision="bf16").path == "bf16"
    with monkeypatch.context() as broken:
        broken.setattr("segstudio.model.quantize.int8_available", lambda: False)
        assert Predictor(calibrated, device="cpu").path == "bf16"
    monkeypatch.setattr(predictor_module, "cpu_has_amx", lambda: True)
    assert Predictor(calibrated, device="cpu").path == "bf16"
    assert Predictor(calibrated, device="cpu", precision="int8").path == "int8-onednn"


def test_amx_is_off_under_an_isa_cap_below_it(monkeypatch) -> None:
    from segstudio.model.predictor import cpu_has_amx

    for cap in ("AVX2", "AVX512_CORE_BF16"):
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
        assert cpu_has_amx() is False
