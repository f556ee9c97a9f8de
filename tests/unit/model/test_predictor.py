"""Predictor: device and precision choice, batch-norm folding, seamless bounded tiling."""

from __future__ import annotations

import copy
import itertools
import tracemalloc

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from segstudio.core.errors import SegStudioError
from segstudio.core.labelset import preset
from segstudio.model.arch import ArchSpec
from segstudio.model.files import new_model
from segstudio.model.predictor import (
    DeviceError,
    PredictionCancelled,
    Predictor,
    fold_batchnorm,
    resolve_precision,
    select_device,
)
from segstudio.model.tiling import _ramp, _split, stitch_tiles, tile_windows


def _randomise_bn(net: torch.nn.Module) -> None:
    gen = torch.Generator().manual_seed(0)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)


@pytest.fixture(scope="module")
def small_model():
    model = new_model(ArchSpec("segnet_basic", {"width": 0.25, "depth": 2}), preset("camvid11"))
    _randomise_bn(model.network)
    return model


@given(
    length=st.integers(1, 5000),
    tile=st.integers(128, 1500),
    frac=st.floats(0.0, 0.25),
    align=st.sampled_from([1, 2, 16, 32]),
)
@settings(max_examples=300, deadline=None)
def test_split_covers_with_overlap_and_at_most_two_windows(length, tile, frac, align) -> None:
    overlap = int(tile * frac)
    windows = _split(length, tile, overlap, align)
    assert windows[0][0] == 0
    assert all(a % align == 0 for a, _ in windows)
    assert windows[-1][1] == length
    assert all(0 < b - a <= tile for a, b in windows)
    for (_, a1), (b0, _) in itertools.pairwise(windows):
        assert b0 <= a1 - overlap  # neighbours overlap by at least `overlap`
    for (_, a1), (b0, _) in zip(windows, windows[2:], strict=False):
        assert b0 >= a1  # no pixel is in three windows


@pytest.mark.parametrize(
    ("h", "w", "tile", "overlap"),
    [(300, 500, 100, 25), (191, 100, 100, 10), (1000, 77, 128, 32), (257, 513, 64, 16)],
)
def test_stitching_a_pointwise_model_equals_the_whole_image(h, w, tile, overlap) -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(5, h, w)).astype(np.float32)
    probs = np.exp(logits) / np.exp(logits).sum(0)
    calls = []

    def tile_fn(y0, y1, x0, x1):
        calls.append((y0, y1, x0, x1))
        return torch.from_numpy(logits[:, y0:y1, x0:x1])

    pred = stitch_tiles(h, w, 5, tile, overlap, tile_fn)
    assert len(calls) > 1
    np.testing.assert_array_equal(pred.labels, probs.argmax(0))
    np.testing.assert_allclose(pred.confidence, probs.max(0), atol=2e-3)


@pytest.mark.parametrize(
    ("h", "w", "tile", "overlap", "align"),
    [
        (300, 500, 100, 25, 1),
        (1000, 77, 128, 32, 1),
        (517, 611, 128, 32, 32),
        (60, 700, 64, 16, 1),  # one row of tiles
        (90, 700, 64, 0, 1),
    ],
)
def test_stitching_equals_a_whole_image_weighted_blend(h, w, tile, overlap, align) -> None:
    """Tiles that disagree everywhere: the result is the ramp-weighted mean of the
    covering tiles' probabilities, as one whole-image accumulator would give."""
    c = 4
    sums = np.zeros((c, h, w), np.float64)
    rows, cols = _split(h, tile, overlap, align), _split(w, tile, overlap, align)

    def tile_logits(y0, y1, x0, x1):
        rng = np.random.default_rng([y0, x0])
        return rng.normal(scale=2.0, size=(c, y1 - y0, x1 - x0)).astype(np.float32)

    for r, (y0, y1) in enumerate(rows):
        ly = rows[r - 1][1] - y0 if r > 0 else 0
        ty = y1 - rows[r + 1][0] if r + 1 < len(rows) else 0
        for k, (x0, x1) in enumerate(cols):
            lx = cols[k - 1][1] - x0 if k > 0 else 0
            tx = x1 - cols[k + 1][0] if k + 1 < len(cols) else 0
            wgt = _ramp(y1 - y0, ly, ty)[:, None] * _ramp(x1 - x0, lx, tx)[None, :]
            lg = tile_logits(y0, y1, x0, x1).astype(np.float64)
            p = np.exp(lg - lg.max(0))
            sums[:, y0:y1, x0:x1] += p / p.sum(0) * wgt

    pred = stitch_tiles(h, w, c, tile, overlap, lambda *a: torch.from_numpy(tile_logits(*a)), align)
    expected = sums.argmax(0)
    margin = np.sort(sums, 0)[-1] - np.sort(sums, 0)[-2]
    clear = margin > 1e-4 * sums.sum(0)  # not a near-tie that float32 may break either way
    assert clear.mean() > 0.99
    np.testing.assert_array_equal(pred.labels[clear], expected[clear])
    np.testing.assert_allclose(pred.confidence, sums.max(0) / sums.sum(0), atol=2e-3)


def test_stitching_blends_overlaps_smoothly() -> None:
    """Tiles that disagree fade into each other: the blend is a weighted mean."""
    h, w = 200, 300

    def tile_fn(y0, y1, x0, x1):
        p = np.zeros((2, y1 - y0, x1 - x0), np.float32)
        p[0] = 0.9 if (x0 // 10) % 2 == 0 else 0.1  # alternate tiles disagree
        p[1] = 1 - p[0]
        return torch.from_numpy(np.log(p))

    pred = stitch_tiles(h, w, 2, 128, 32, tile_fn)
    assert np.all(pred.confidence >= 0.5 - 1e-3)
    assert np.all(pred.confidence <= 0.9 + 1e-3)


def test_stitching_memory_is_bounded() -> None:
    """Accumulators are O(tile^2 + overlap * width), not O(classes * H * W)."""
    h, w, c = 3000, 6000, 8

    def tile_fn(y0, y1, x0, x1):
        p = torch.zeros((c, y1 - y0, x1 - x0))
        p[0] += 0.01
        return p

    tracemalloc.start()
    try:
        pred = stitch_tiles(h, w, c, 512, 64, tile_fn)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    outputs = pred.labels.nbytes + pred.confidence.nbytes
    # a few tile-sized buffers and two overlap-by-width carries, in float32
    bound = 4 * (c + 1) * 4 * (512 * 512 + 2 * 64 * w)
    assert peak - outputs < bound
    assert bound < (c + 1) * h * w * 4 / 4  # far below one whole-image accumulator
    assert (pred.labels == 0).all()


def test_fold_batchnorm_keeps_the_function(small_model) -> None:
    net = copy.deepcopy(small_model.network).eval()
    folded = fold_batchnorm(copy.deepcopy(net))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    x = torch.randn(1, 3, 41, 67)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), net(x), atol=1e-4, rtol=1e-4)


def test_predictor_output_and_precisions(small_model) -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (61, 83, 3), dtype=np.uint8)
    fp32 = Predictor(small_model, device="cpu", precision="fp32").predict(rgb)
    assert fp32.labels.shape == (61, 83) and fp32.labels.dtype == np.uint8
    assert fp32.confidence.dtype == np.float16
    assert fp32.labels.max() < 11
    assert np.all(fp32.confidence >= 1 / 11 - 1e-3) and np.all(fp32.confidence <= 1.0)
    # the reference: the plain float32 network with softmax
    net = small_model.network.eval()
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    norm = small_model.info.normalization
    x = (x - torch.tensor(norm.mean).view(1, 3, 1, 1)) / torch.tensor(norm.std).view(1, 3, 1, 1)
    with torch.no_grad():
        ref = torch.softmax(net(x)[0], 0)
    np.testing.assert_array_equal(fp32.labels, ref.argmax(0).numpy())
    np.testing.assert_allclose(fp32.confidence, ref.max(0).values.numpy(), atol=2e-3)
    bf16 = Predictor(small_model, device="cpu", precision="bf16").predict(rgb)
    assert (bf16.labels == fp32.labels).mean() > 0.9


def test_tiled_prediction_has_no_seams(small_model) -> None:
    rgb = np.random.default_rng(2).integers(0, 256, (300, 420, 3), dtype=np.uint8)
    rgb = np.ascontiguousarray(np.repeat(np.repeat(rgb[::10, ::10], 10, 0), 10, 1))
    whole = Predictor(small_model, device="cpu", precision="fp32", tile=1024).predict(rgb)
    tiled = Predictor(small_model, device="cpu", precision="fp32", tile=128, overlap=32)
    assert tiled.align == 4  # segnet_basic of depth 2 pools twice
    tiled = tiled.predict(rgb)
    assert tiled.labels.shape == whole.labels.shape
    assert (tiled.labels == whole.labels).mean() > 0.98


def test_predictor_refuses_bad_input_and_settings(small_model) -> None:
    p = Predictor(small_model, device="cpu")
    with pytest.raises(SegStudioError, match="uint8"):
        p.predict(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(SegStudioError, match="channel"):
        p.predict(np.zeros((10, 10, 4), np.uint8))
    with pytest.raises(SegStudioError, match="tile"):
        Predictor(small_model, tile=16)
    with pytest.raises(SegStudioError, match="overlap"):
        Predictor(small_model, tile=256, overlap=200)


def test_device_selection() -> None:
    assert select_device("cpu").type == "cpu"
    assert select_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(DeviceError, match=r"unknown device|unsupported"):
        select_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="CUDA"):
            select_device("cuda")
    assert resolve_precision(torch.device("cpu"), "fp32") == torch.float32
    with pytest.raises(DeviceError, match="fp16"):
        resolve_precision(torch.device("cpu"), "fp16")


def test_an_isa_cap_without_bf16_units_means_fp32(monkeypatch) -> None:
    from segstudio.model.predictor import cpu_has_native_bf16, resolve_precision

    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")  # as on an AVX2-only CPU
    assert cpu_has_native_bf16() is False
    assert resolve_precision(torch.device("cpu"), "auto") == torch.float32


def test_without_confidence_the_classes_are_the_same(small_model) -> None:
    rng = np.random.default_rng(5)
    rgb = rng.integers(0, 256, (150, 230, 3), dtype=np.uint8)
    for tile in (64, 256):  # tiled, and one piece
        predictor = Predictor(small_model, precision="fp32", tile=tile)
        full = predictor.predict(rgb)
        bare = predictor.predict(rgb, confidence=False)
        assert bare.confidence is None and full.confidence is not None
        np.testing.assert_array_equal(bare.labels, full.labels)


def test_sure_answers_leave_the_unsure_pixels_unlabeled() -> None:
    from segstudio.model.predictor import Prediction

    labels = np.array([[0, 1], [2, 3]], np.uint8)
    pred = Prediction(labels, np.array([[0.95, 0.5], [0.92, 0.89]], np.float16))
    np.testing.assert_array_equal(pred.sure(0.9), [[0, 255], [2, 255]])
    assert labels[0, 1] == 1  # a copy: the prediction is unchanged
    with pytest.raises(SegStudioError, match="without its confidence"):
        Prediction(labels, None).sure(0.9)


def test_tiles_predicted_at_once_give_the_same_prediction(small_model) -> None:
    """Two tile workers: the same classes and confidence, progress in order, the
    process's thread count untouched, and a cancel that stops them and frees the network."""
    rgb = np.random.default_rng(7).integers(0, 256, (300, 410, 3), dtype=np.uint8)
    one = Predictor(small_model, device="cpu", precision="fp32", tile=128)
    two = Predictor(small_model, device="cpu", precision="fp32", tile=128, tile_workers=2)
    threads = torch.get_num_threads()
    seen: list[tuple[int, int]] = []
    a = one.predict(rgb)
    in_workers: list[int] = []  # the torch threads each tile's forward ran with
    forward = two._forward

    def counting(crop: np.ndarray) -> torch.Tensor:
        in_workers.append(torch.get_num_threads())
        return forward(crop)

    two._forward = counting  # type: ignore[method-assign]
    b = two.predict(rgb, progress=lambda done, total: seen.append((done, total)))
    del two._forward
    assert in_workers and set(in_workers) == {max(1, threads // 2)}
    assert torch.get_num_threads() == threads
    total = two.tile_count(300, 410)
    assert total > 4 and seen == [(i, total) for i in range(total + 1)]
    assert (a.labels == b.labels).mean() > 0.999
    np.testing.assert_allclose(a.confidence, b.confidence, atol=2e-3)

    checks = 0

    def cancelled() -> bool:
        nonlocal checks
        checks += 1
        return checks > 40  # some tiles in, then Stop

    with pytest.raises(PredictionCancelled):
        two.predict(rgb, cancelled=cancelled)
    assert torch.get_num_threads() == threads
    np.testing.assert_array_equal(two.predict(rgb).labels, b.labels)  # nothing left held
    with pytest.raises(SegStudioError, match="tile_workers"):
        Predictor(small_model, tile_workers=0)


@pytest.mark.parametrize("workers", [1, 2])
def test_an_image_read_by_bands_predicts_as_the_whole_image(small_model, tmp_path, workers) -> None:
    """A TIFF read a band of tile rows at a time: the same prediction, and only those rows read."""
    import tifffile

    from segstudio.io.images import open_bands

    rgb = np.random.default_rng(8).integers(0, 256, (300, 410, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "scan.tif", rgb, photometric="rgb", tile=(32, 64))
    predictor = Predictor(
        small_model, device="cpu", precision="fp32", tile=128, tile_workers=workers
    )
    whole = predictor.predict(rgb)
    with open_bands(tmp_path / "scan.tif") as bands:
        asked: list[tuple[int, int]] = []
        read = bands.rows
        bands.rows = lambda y0, y1: asked.append((y0, y1)) or read(y0, y1)  # type: ignore[method-assign]
        banded = predictor.predict(bands)
    np.testing.assert_array_equal(banded.labels, whole.labels)
    np.testing.assert_array_equal(banded.confidence, whole.confidence)
    windows = {(y0, y1) for y0, y1, _, _ in tile_windows(300, 410, 128, 16, predictor.align)}
    assert sorted(asked) == sorted(windows)  # each row of tiles read once, never the whole
    small = Predictor(small_model, device="cpu", precision="fp32")
    with open_bands(tmp_path / "scan.tif") as bands:  # one tile: read in one piece
        np.testing.assert_array_equal(small.predict(bands).labels, small.predict(rgb).labels)
