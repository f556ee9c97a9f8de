"""The live learner: a head over a frozen SegNet, refitted in seconds on labelled pixels."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest
import torch
from PIL import Image

from segstudio.cli import main
from segstudio.core.errors import TrainingError
from segstudio.core.labelset import UNLABELED, LabelClass, LabelSet
from segstudio.model.arch import ArchSpec
from segstudio.model.files import load_model, new_model, save_model
from segstudio.model.live import gather_taps
from segstudio.model.predictor import Predictor
from segstudio.training.live import LiveConfig, LiveLearner, _stratified

TWO = LabelSet("two", (LabelClass("smooth", (200, 30, 30)), LabelClass("rough", (30, 30, 200))))
ROAD = LabelSet("road", (LabelClass("Sky", (1, 1, 1)), LabelClass("Road", (2, 2, 2))))
FAST = LiveConfig(steps=150, warm_steps=60, per_image=3000, min_per_class=100)


def _base(labelset: LabelSet = TWO, seed: int = 0):
    return new_model(ArchSpec("segnet", {"width": 0.125}), labelset, seed=seed)


def _textures(seed: int, h: int = 96, w: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Left: smooth grey; right: fine random noise of the same mean. A random boundary."""
    rng = np.random.default_rng(seed)
    cut = int(rng.integers(w // 3, 2 * w // 3))
    img = np.full((h, w, 3), 128, np.uint8)
    noise = rng.choice([40, 216], size=(h, w - cut, 1)).astype(np.uint8)
    img[:, cut:] = noise
    gt = np.zeros((h, w), np.uint8)
    gt[:, cut:] = 1
    return img, gt


def _scribbles(gt: np.ndarray) -> np.ndarray:
    """Two short horizontal strokes per class, far from the boundary; the rest unlabeled."""
    labels = np.full(gt.shape, UNLABELED, np.uint8)
    cols = [np.flatnonzero(gt[0] == c) for c in (0, 1)]
    for c, xs in enumerate(cols):
        mid = xs[len(xs) // 2]
        for row in (20, 70):
            labels[row : row + 3, mid - 8 : mid + 8] = c
    return labels


def test_separates_two_textures_from_a_few_scribbles() -> None:
    learner = LiveLearner(_base(ROAD), TWO, FAST)
    assert not learner.ready  # no class in common with the base: nothing to predict yet
    img, gt = _textures(0)
    scribbles = _scribbles(gt)
    assert (scribbles != UNLABELED).mean() < 0.05
    assert learner.add_image("a", img, scribbles) == int((scribbles != UNLABELED).sum())
    report = learner.fit()
    assert report.samples > 0 and report.images == 1
    for seed in (1, 2, 3):  # images it never saw
        test, truth = _textures(seed)
        pred = learner.predict(test).labels
        inner = np.ones_like(truth, bool)
        edge = np.flatnonzero(np.diff(truth[0].astype(int)))[0]
        inner[:, max(0, edge - 4) : edge + 5] = False  # the boundary's own pixels aside
        assert (pred[inner] == truth[inner]).mean() > 0.95


@pytest.mark.parametrize("decoder", [True, False])
def test_head_on_gathered_pixels_equals_the_dense_forward_pass(decoder: bool) -> None:
    learner = LiveLearner(_base(), TWO, dataclasses.replace(FAST, decoder=decoder, smooth=1))
    assert learner.net.decoder is decoder
    img, gt = _textures(4, 70, 90)  # not a multiple of the pooling grid
    learner.add_image("a", img, gt)
    learner.fit()
    net = learner.net
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() * learner._scale + learner._shift
    with torch.no_grad():
        dense = net(x)[0]
        feats, scores = net.taps(x)
        ys = torch.arange(70).repeat_interleave(90)
        xs = torch.arange(90).repeat(70)
        f, s = gather_taps(feats, scores, ys, xs, net.strides)
        w1 = torch.cat([p.weight.flatten(1) for p in net.project], 1)
        z = torch.relu(f @ w1.T + net.project[0].bias) @ net.out.weight.flatten(1).T
        z = z + net.out.bias
        if decoder:
            z = z + s @ net.from_base.weight.flatten(1).T
    torch.testing.assert_close(z.T.reshape(2, 70, 90), dense, atol=1e-4, rtol=1e-4)


def test_starts_as_the_base_model_when_the_classes_are_the_same() -> None:
    base = _base()
    learner = LiveLearner(base, TWO, FAST)
    assert learner.ready and not learner.fitted
    img, _ = _textures(5)
    expected = Predictor(base, precision="fp32").predict(img).labels
    np.testing.assert_array_equal(learner.predict(img).labels, expected)


def test_an_image_relabelled_replaces_its_samples_and_an_empty_one_is_dropped() -> None:
    learner = LiveLearner(_base(), TWO, FAST)
    img, gt = _textures(6)
    learner.add_image("a", img, gt)
    assert learner.images == ["a"]
    assert learner.add_image("a", img, np.full_like(gt, UNLABELED)) == 0
    assert learner.images == []
    with pytest.raises(TrainingError, match="no labelled pixels"):
        learner.fit()


def test_model_file_round_trip_and_continues_learning(tmp_path) -> None:
    learner = LiveLearner(_base(), TWO, FAST)
    img, gt = _textures(7)
    learner.add_image("a", img, gt)
    learner.fit()
    path = save_model(tmp_path / "live.safetensors", learner.model())
    loaded = load_model(path)
    assert loaded.info.arch.name == "live"
    assert loaded.info.provenance["kind"] == "live"
    np.testing.assert_array_equal(
        Predictor(loaded, precision="fp32").predict(img).labels, learner.predict(img).labels
    )
    again = LiveLearner(loaded, TWO, FAST)  # a live model keeps its head
    assert again.fitted
    np.testing.assert_array_equal(again.predict(img).labels, learner.predict(img).labels)


def test_refuses_a_base_that_is_not_a_segnet() -> None:
    other = new_model(ArchSpec("unet", {"width": 0.125, "depth": 2}), TWO)
    with pytest.raises(TrainingError, match="SegNet"):
        LiveLearner(other, TWO)


def test_train_quick_cli_writes_a_model_predict_loads(tmp_path, capsys) -> None:
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    (data / "labels").mkdir()
    (data / "classes.json").write_text(TWO.to_json())
    for i in range(4):
        img, gt = _textures(10 + i)
        Image.fromarray(img).save(data / "images" / f"t{i}.png")
        Image.fromarray(gt).save(data / "labels" / f"t{i}.png")
    base = save_model(tmp_path / "base.safetensors", _base())
    out = tmp_path / "quick.safetensors"
    args = ["train", str(data), "--quick", "--init", str(base), "--out", str(out)]
    assert main([*args, "--val-fraction", "0.25"]) == 0
    printed = capsys.readouterr().out
    assert "wrote" in printed and "mean IoU" in printed
    assert load_model(out).info.arch.name == "live"
    masks = tmp_path / "masks"
    assert main(["predict", str(data / "images"), "--model", str(out), "--out", str(masks)]) == 0
    pred = np.asarray(Image.open(masks / "t0.png"))
    truth = np.asarray(Image.open(data / "labels" / "t0.png"))
    assert (pred == truth).mean() > 0.9
    assert main([*args, "--epochs", "3"]) == 2  # a deep-training flag is refused


def test_memory_stays_bounded_as_images_are_added() -> None:
    config = dataclasses.replace(FAST, per_image=500, min_per_class=10, max_samples=1200)
    learner = LiveLearner(_base(), TWO, config)
    for i in range(6):
        img, gt = _textures(20 + i, 48, 64)
        learner.add_image(f"t{i}", img, gt)
    assert learner.images == [f"t{i}" for i in range(6)]
    assert learner.sample_count <= 1200
    # every image still weighs what its labelled pixels sampled stand for
    weights = [float(s.weights.sum()) for s in learner._samples.values()]
    assert max(weights) == pytest.approx(min(weights), rel=0.05)
    learner.fit()


def test_base_model_of_a_live_model_is_the_segnet_it_read(tmp_path) -> None:
    from segstudio.model.live import base_model

    base = _base(ROAD)
    learner = LiveLearner(base, TWO, FAST)
    img, gt = _textures(30)
    learner.add_image("a", img, gt)
    learner.fit()
    loaded = load_model(save_model(tmp_path / "live.safetensors", learner.model()))
    segnet = base_model(loaded)
    assert segnet.info.arch.name == "segnet"
    assert list(segnet.info.labelset.names) == list(ROAD.names)
    for key, value in base.network.state_dict().items():
        torch.testing.assert_close(segnet.network.state_dict()[key], value)
    # its weights train again (a one click from an active live model fine-tunes it)
    assert all(p.requires_grad for p in segnet.network.parameters())
    assert not any(p.requires_grad for p in loaded.network.base.parameters())  # a copy
    from segstudio.training.config import TrainConfig
    from segstudio.training.step import build_optimizer

    assert build_optimizer(segnet.network, TrainConfig()).param_groups


def test_without_the_decoder_the_logits_are_smoothed() -> None:
    learner = LiveLearner(_base(ROAD), TWO, FAST)  # no class in common: encoder only
    assert not learner.net.decoder and learner.net.smooth == FAST.smooth > 1
    img, gt = _textures(31)
    learner.add_image("a", img, gt)
    learner.fit()
    net = learner.net
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() * learner._scale + learner._shift
    with torch.no_grad():
        feats, scores = net.taps(x)
        raw = net.head(feats, scores, img.shape[:2])
        k = net.smooth
        expected = torch.nn.functional.avg_pool2d(raw, k, 1, k // 2, count_include_pad=False)
        torch.testing.assert_close(net(x), expected)


def test_mirror_adds_the_same_pixels_read_from_the_mirrored_image() -> None:
    img, gt = _textures(5, 64, 96)
    config = dataclasses.replace(FAST, decoder=False, mirror=False)
    plain = LiveLearner(_base(), TWO, config)
    mirrored = LiveLearner(_base(), TWO, dataclasses.replace(config, mirror=True))
    n = plain.add_image("a", img, gt)
    assert mirrored.add_image("a", img, gt) == n  # labelled pixels sampled, as before
    s, m = plain._samples["a"], mirrored._samples["a"]
    assert len(m.labels) == 2 * n
    assert torch.equal(m.labels[0::2], s.labels) and torch.equal(m.labels[1::2], s.labels)
    assert torch.equal(m.feats[0::2], s.feats)  # the image itself, the same pixels
    assert float(m.weights.sum()) == pytest.approx(float(s.weights.sum()))
    # the other half: those pixels read from the mirrored image, at the mirrored columns
    rng = np.random.default_rng(config.seed)  # the draw both learners made
    ys, xs, _ = _stratified(gt, 2, config.per_image, config.min_per_class, rng)
    flipped = np.ascontiguousarray(img[:, ::-1])
    want, _ = plain._features_at(flipped, ys, img.shape[1] - 1 - xs)
    assert torch.equal(m.feats[1::2], want)
    assert not torch.equal(want, s.feats)  # the network is not mirror symmetric: new views
    # None: on when the decoder is off (classes the base does not know), off with it
    auto = LiveLearner(_base(), TWO, dataclasses.replace(FAST, decoder=False))
    assert auto.add_image("a", img, gt) == n and len(auto._samples["a"].labels) == 2 * n
    with_decoder = LiveLearner(_base(), TWO, dataclasses.replace(FAST, decoder=True))
    assert with_decoder.add_image("a", img, gt) == n
    assert len(with_decoder._samples["a"].labels) == n
    # and a head learns from both views
    learner = LiveLearner(_base(ROAD), TWO, dataclasses.replace(FAST, mirror=True))
    learner.add_image("b", *_textures(0))
    learner.fit()
    for seed in (1, 2):
        test, truth = _textures(seed)
        assert (learner.predict(test).labels == truth).mean() > 0.95


@functools.cache
def _trained_base_state() -> dict:
    """A tiny SegNet trained for a moment to tell the two textures apart (its weights)."""
    base = _base(seed=3)
    net = base.network.train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    torch.manual_seed(0)
    pairs = [_textures(40 + i) for i in range(2)]
    x = torch.stack([torch.from_numpy(img).permute(2, 0, 1).float() / 255 for img, _ in pairs])
    y = torch.stack([torch.from_numpy(gt).long() for _, gt in pairs])
    mean = torch.tensor(base.info.normalization.mean).view(1, -1, 1, 1)
    std = torch.tensor(base.info.normalization.std).view(1, -1, 1, 1)
    for _ in range(30):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net((x - mean) / std), y).backward()
        opt.step()
    return {k: v.clone() for k, v in net.state_dict().items()}


def _trained_base():
    base = _base(seed=3)
    base.network.load_state_dict(_trained_base_state())
    base.network.eval()
    return base


def _agreement_with_base(replay: bool) -> tuple[float, float]:
    """Fit on one image labelled all 'smooth'; how far the head still agrees with the
    base network on another image (replayed or not), and the base's share of 'rough'."""
    base = _trained_base()
    img, _ = _textures(20)
    other, _ = _textures(21)
    config = dataclasses.replace(FAST, replay_confidence=0.0)  # every pixel: a toy base
    learner = LiveLearner(base, TWO, config)
    learner.add_image("a", img, np.zeros(img.shape[:2], np.uint8))
    if replay:
        assert learner.replays
        assert learner.add_replay("b", other) > 0
        assert learner.replayed == ["b"] and learner.images == ["a"]
    report = learner.fit()
    assert report.images == 1 and report.replayed == (1 if replay else 0)
    expected = Predictor(base, precision="fp32").predict(other).labels
    return float((learner.predict(other).labels == expected).mean()), float(expected.mean())


def test_replay_keeps_what_the_base_knew_where_the_labels_say_nothing() -> None:
    without, rough = _agreement_with_base(replay=False)
    with_replay, _ = _agreement_with_base(replay=True)
    assert 0.1 < rough < 0.9  # the base answers both classes on that image
    assert with_replay > 0.9
    assert with_replay > without + 0.1


def test_replay_needs_a_base_that_knows_every_class_and_gives_way_to_labels() -> None:
    img, gt = _textures(22)
    stranger = LiveLearner(_base(ROAD), TWO, FAST)  # the base knows none of them
    assert not stranger.replays
    assert stranger.add_replay("b", img) == 0 and stranger.replayed == []
    learner = LiveLearner(_base(), TWO, dataclasses.replace(FAST, replay_confidence=0.0))
    assert learner.add_replay("b", img) > 0
    learner.add_image("b", img, gt)  # labelled now: its labels replace the replay
    assert learner.replayed == [] and learner.images == ["b"]
    assert learner.add_replay("b", img) == 0  # a labelled image is never replayed
    with pytest.raises(TrainingError, match="replay_confidence"):
        LiveConfig(replay_confidence=1.5)


def test_train_quick_cli_replays_a_folder_and_refuses_replay_without_quick(
    tmp_path, capsys
) -> None:
    data = tmp_path / "data"
    for sub in ("images", "labels", "more"):
        (data / sub).mkdir(parents=True)
    (data / "classes.json").write_text(TWO.to_json())
    img, gt = _textures(30)
    Image.fromarray(img).save(data / "images" / "t0.png")
    Image.fromarray(gt).save(data / "labels" / "t0.png")
    for i in range(3):
        Image.fromarray(_textures(31 + i)[0]).save(data / "more" / f"u{i}.png")
    (data / "more" / "broken.png").write_bytes(b"not a png")  # skipped, not fatal
    Image.new("RGB", (2100, 2000)).save(data / "more" / "huge.png")  # too big to replay
    sure = _base()
    with torch.no_grad():  # untrained, it is unsure everywhere; now sure of "smooth"
        sure.network.classifier.bias[0] += 10.0
    base = save_model(tmp_path / "base.safetensors", sure)
    out = tmp_path / "quick.safetensors"
    args = ["train", str(data), "--init", str(base), "--out", str(out)]
    assert main([*args, "--quick", "--replay", str(data / "more")]) == 0
    model = load_model(out)
    assert model.info.arch.name == "live"
    assert model.info.provenance["replayed"] == 3  # the three readable, small ones
    capsys.readouterr()
    assert main([*args, "--replay", str(data / "more"), "--epochs", "1"]) == 2
    assert "--replay applies to --quick" in capsys.readouterr().err
    assert main([*args, "--quick", "--overwrite", "--replay", str(tmp_path / "nope")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_a_continued_live_model_replays_by_class_names_not_by_its_learnt_weights() -> None:
    """A live model learning on (the window's Learn as I paint from an active live
    model): replay labels the base's answers through the class names. The head's
    learnt weights on the base's scores are no class map; read as one, they turned
    replays into wrong labels, and 10 replayed CamVid frames took a continued head
    from 0.72 to 0.06 mIoU."""
    base = _trained_base()
    config = dataclasses.replace(FAST, replay_confidence=0.0)  # every pixel: a toy base
    img, _ = _textures(20)
    other, _ = _textures(21)
    rough = np.ones(img.shape[:2], np.uint8)  # the head learns: base "smooth" too
    first = LiveLearner(base, TWO, config)
    first.add_image("a", img, rough)
    first.fit()
    later = LiveLearner(first.model(), TWO, config)
    assert later.replays
    # the learnt weight from the base's "smooth" to "rough" is positive: no class map
    assert later._prior.flatten(1)[1, 0] > 0
    later.add_image("a", img, rough)
    assert later.add_replay("b", other) > 0
    later.fit()
    expected = Predictor(base, precision="fp32").predict(other).labels
    assert 0.1 < expected.mean() < 0.9  # the base answers both classes there
    assert (later.predict(other).labels == expected).mean() > 0.9
