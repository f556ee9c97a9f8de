"""The training engine on tiny synthetic data: data sources, augmentation, the fine-tune
loop (learning, sparse labels, cancel, resume, NaN, out of memory, new heads,
reproducibility), the ``segstudio train`` command and a two-process DDP run."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open

from segstudio.cli import main
from segstudio.core.errors import TrainingError
from segstudio.core.labelset import UNLABELED, LabelClass, LabelSet
from segstudio.io.project import Project
from segstudio.model.arch import ARCHITECTURES, ArchSpec
from segstudio.model.files import LoadedModel, load_model, new_model
from segstudio.training import loop
from segstudio.training.augment import augment
from segstudio.training.data import (
    Sample,
    TrainingData,
    from_folder,
    from_project,
    hash_split,
    load_source,
    median_frequency_weights,
)
from segstudio.training.ddp import shard_indices
from segstudio.training.loop import (
    CHECKPOINT_NAME,
    TrainConfig,
    TrainProgress,
    TrainResult,
    checkpoint_info,
    evaluate,
    fine_tune,
)

SHAPES = LabelSet(
    "shapes",
    (LabelClass("ground", (90, 90, 90)), LabelClass("disc", (220, 40, 40)),
     LabelClass("box", (40, 200, 90))),
)  # fmt: skip
TINY = ArchSpec("segnet_basic", {"width": 0.25, "depth": 2})
SIZE = 64


def _shape_image(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A grey textured background with a red disc and a green box (labels 0, 1, 2)."""
    yy, xx = np.mgrid[:SIZE, :SIZE]
    rgb = np.empty((SIZE, SIZE, 3), np.float32)
    rgb[:] = rng.uniform(20, 110)
    labels = np.zeros((SIZE, SIZE), np.uint8)
    y0, x0 = rng.integers(0, SIZE - 24, 2)
    box = np.zeros((SIZE, SIZE), bool)
    box[y0 : y0 + rng.integers(14, 24), x0 : x0 + rng.integers(14, 24)] = True
    cy, cx = rng.integers(14, SIZE - 14, 2)
    disc = (yy - cy) ** 2 + (xx - cx) ** 2 < rng.integers(7, 13) ** 2
    rgb[box] = (40, 190, 90)
    labels[box] = 2
    rgb[disc] = (215, 55, 40)
    labels[disc] = 1
    rgb += rng.normal(0, 12, rgb.shape)
    return np.clip(rgb, 0, 255).astype(np.uint8), labels


def _write_dataset(root: Path, n: int = 12, seed: int = 0) -> Path:
    """A dataset folder: images/, labels/ and classes.json."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for i in range(n):
        rgb, labels = _shape_image(rng)
        Image.fromarray(rgb).save(root / "images" / f"img{i:02d}.png")
        Image.fromarray(labels).save(root / "labels" / f"img{i:02d}.png")
    SHAPES.save(root / "classes.json")
    return root


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_dataset(tmp_path_factory.mktemp("shapes"))


@pytest.fixture(scope="module")
def data(shapes: Path) -> TrainingData:
    """9 training and 3 validation images, named in order (not hash-split)."""
    samples = from_folder(shapes, val_fraction=0.0).train
    return TrainingData(samples[:9], samples[9:], SHAPES, str(shapes))


def _config(**kw: Any) -> TrainConfig:
    base: dict[str, Any] = {
        "epochs": 2,
        "batch_size": 3,
        "crop": SIZE,
        "lr": 1e-2,
        "warmup_steps": 3,
        "precision": "fp32",
        "verdict_pixels": 1000,  # toy images: a verdict on few pixels
        "device": "cpu",
    }
    return TrainConfig(**{**base, **kw})


def _drive(
    gen: Generator[TrainProgress, None, TrainResult], stop_after: int | None = None
) -> tuple[list[TrainProgress], TrainResult | None]:
    """Run a fine-tune generator; with ``stop_after``, close it after that many steps."""
    seen: list[TrainProgress] = []
    try:
        while True:
            p = next(gen)
            seen.append(p)
            if stop_after is not None and p.kind == "step" and p.step == stop_after:
                gen.close()
                return seen, None
    except StopIteration as stop:
        return seen, stop.value


def _losses(seen: list[TrainProgress]) -> list[float | None]:
    return [p.loss for p in seen if p.kind == "step"]


def _state(result: TrainResult) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in result.model.network.state_dict().items()}


# --------------------------------------------------------------------------- config


def test_config_defaults_and_round_trip() -> None:
    cfg = TrainConfig()
    assert cfg.epochs == 20 and cfg.minutes is None
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    timed = TrainConfig(minutes=1.5)
    assert timed.epochs is None and TrainConfig.from_dict(timed.to_dict()) == timed
    json.dumps(cfg.to_dict())


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"epochs": 2, "minutes": 1.0}, "not both"),
        ({"epochs": 0}, "epochs"),
        ({"minutes": -1.0}, "minutes"),
        ({"batch_size": 0}, "batch_size"),
        ({"lr": float("nan")}, "lr"),
        ({"optimizer": "adam"}, "optimizer"),
        ({"schedule": "step"}, "schedule"),
        ({"precision": "fp16"}, "precision"),
        ({"class_weighting": "inverse"}, "class_weighting"),
        ({"freeze_encoder": 1}, "freeze_encoder"),
        ({"val_every_epochs": 0}, "val_every_epochs"),
    ],
)
def test_config_rejects_bad_values(kw: dict[str, Any], needle: str) -> None:
    with pytest.raises(TrainingError, match=needle):
        TrainConfig(**kw)


def test_config_from_dict_rejects_unknown_keys() -> None:
    with pytest.raises(TrainingError, match="unknown training setting"):
        TrainConfig.from_dict({"epochs": 3, "momentum": 0.9})


# --------------------------------------------------------------------------- data


def test_hash_split_is_stable_when_images_are_added() -> None:
    names = [f"frame{i:04d}.png" for i in range(200)]
    val = hash_split(names, 0.15)
    assert 15 <= len(val) <= 45
    more = hash_split([*names, *(f"new{i}.png" for i in range(100))], 0.15)
    assert val == more & set(names)
    assert len(hash_split(["a.png", "b.png"], 0.15)) == 1
    assert hash_split(["a.png"], 0.15) == set()
    assert hash_split(names, 0.15, seed=1) != val


def test_from_folder_pairs_by_stem_and_splits(shapes: Path) -> None:
    d = from_folder(shapes)
    assert len(d.train) + len(d.val) == 12 and d.val
    assert not {s.name for s in d.train} & {s.name for s in d.val}
    rgb, labels, weights = d.train[0].load()
    assert rgb.shape == (SIZE, SIZE, 3) and labels.dtype == np.uint8 and weights is None
    assert d.labelset.same_classes(SHAPES)
    assert f"{len(d.train)} training and {len(d.val)} validation" in d.describe()
    assert load_source(shapes).train[0].name == d.train[0].name


def test_from_folder_camvid_layout_with_void(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    for split in ("train", "val"):
        (tmp_path / split).mkdir()
        (tmp_path / f"{split}annot").mkdir()
        for i in range(2):
            rgb, labels = _shape_image(rng)
            labels[:4] = 3  # the void value
            Image.fromarray(rgb).save(tmp_path / split / f"{split}{i}.png")
            Image.fromarray(labels).save(tmp_path / f"{split}annot" / f"{split}{i}.png")
    doc = SHAPES.to_dict()
    camvid_style = {"name": "shapes", "void_index": 3, "classes": doc["classes"]}
    (tmp_path / "classes.json").write_text(json.dumps(camvid_style))
    d = from_folder(tmp_path)
    assert [s.name for s in d.train] == ["train0.png", "train1.png"]
    assert [s.name for s in d.val] == ["val0.png", "val1.png"]
    _, labels, _ = d.val[0].load()
    assert (labels[:4] == UNLABELED).all() and labels.max() == UNLABELED


def test_from_folder_reports_mismatches(tmp_path: Path, shapes: Path) -> None:
    root = tmp_path / "broken"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    SHAPES.save(root / "classes.json")
    for name in ("a", "b", "c"):
        (root / "images" / f"{name}.png").write_bytes(
            (shapes / "images" / "img00.png").read_bytes()
        )
    (root / "labels" / "a.png").write_bytes((shapes / "labels" / "img00.png").read_bytes())
    with pytest.raises(TrainingError, match=r"2 image\(s\) .* no label map .*b\.png, c\.png"):
        from_folder(root)
    with pytest.raises(TrainingError, match="not a dataset folder"):
        from_folder(tmp_path)
    (root / "classes.json").unlink()
    with pytest.raises(TrainingError, match=r"no classes\.json"):
        from_folder(root)


def test_labels_outside_the_classes_are_refused(tmp_path: Path) -> None:
    root = _write_dataset(tmp_path / "d", n=3)
    labels = np.full((SIZE, SIZE), 7, np.uint8)
    Image.fromarray(labels).save(root / "labels" / "img00.png")
    d = from_folder(root, val_fraction=0.0)
    with pytest.raises(TrainingError, match=r"value\(s\) 7,.*--void"):
        _drive(fine_tune(d, arch=TINY, config=_config(epochs=1)))


def _project(tmp_path: Path, n: int = 5) -> Path:
    folder = tmp_path / "proj"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for i in range(n):
        rgb, _ = _shape_image(rng)
        Image.fromarray(rgb).save(folder / f"p{i}.png")
    with Project.open(folder) as p:
        p.scan()
        p.set_labelset(SHAPES)
    return folder


def test_from_project_snapshot_sparse_labels_and_corrected_weights(tmp_path: Path) -> None:
    folder = _project(tmp_path)
    with Project.open(folder) as p:
        with pytest.raises(TrainingError, match="paint or import labels first"):
            from_project(p)
        sparse = np.full((SIZE, SIZE), UNLABELED, np.uint8)
        sparse[10:20, 10:20] = 1
        sparse[40:50, 40:50] = 0
        p.save_labels("p0.png", sparse)
        full = np.zeros((SIZE, SIZE), np.uint8)
        full[:, 32:] = 2
        p.save_labels("p1.png", full)
        pred = np.zeros((SIZE, SIZE), np.uint8)  # the model said class 0 everywhere
        p.save_prediction("p1.png", pred, np.ones((SIZE, SIZE), np.float32), model="m")
        p.save_labels("p2.png", np.full((SIZE, SIZE), UNLABELED, np.uint8))  # nothing painted
        p.save_prediction("p3.png", pred, np.ones((SIZE, SIZE), np.float32), model="m")
        d = from_project(p, corrected_weight=3.0, val_fraction=0.0)
        assert sorted(s.name for s in d.train) == ["p0.png", "p1.png"] and not d.val
        by_name = {s.name: s for s in d.train}
        assert by_name["p0.png"].weight_map is None  # no prediction to correct
        w = by_name["p1.png"].weight_map
        assert w is not None and w.dtype == np.float16
        assert (w[:, 32:] == 3.0).all() and (w[:, :32] == 1.0).all()
        # the snapshot does not see later edits
        p.save_labels("p1.png", np.zeros((SIZE, SIZE), np.uint8))
        assert (by_name["p1.png"].load_labels()[:, 32:] == 2).all()
        assert from_project(p, corrected_weight=1.0).train[0].weight_map is None
        d2 = from_project(p, val_names=["p1.png", "p4.png"])
        assert [s.name for s in d2.val] == ["p1.png"]
    assert load_source(folder).labelset.same_classes(SHAPES)


def test_median_frequency_weights() -> None:
    a = np.zeros((4, 4), np.uint8)
    a[0, :2] = 1  # image 1: 14 x class 0, 2 x class 1
    b = np.full((4, 4), UNLABELED, np.uint8)
    b[:2] = 0  # image 2: 8 x class 0, the rest unlabeled
    d = TrainingData(
        (Sample("a", Path("a.png"), labels=a), Sample("b", Path("b.png"), labels=b)),
        (),
        SHAPES,
        "mem",
    )
    w = median_frequency_weights(d, 3)
    f0, f1 = 22 / 24, 2 / 16
    med = np.median([f0, f1])
    np.testing.assert_allclose(w, [med / f0, med / f1, 1.0], rtol=1e-6)


def test_augment_with_a_focus_keeps_that_pixel_in_the_crop() -> None:
    labels = np.zeros((300, 400), np.uint8)
    labels[250:254, 10:14] = 1  # a small, rare object in a corner
    rgb = np.zeros((300, 400, 3), np.uint8)
    for seed in range(20):
        rng = np.random.default_rng(seed)
        _, out, _ = augment(rgb, labels, None, rng, 64, focus=(251.0, 11.0))
        assert (out == 1).any(), seed


def test_balanced_crops_train(data: TrainingData) -> None:
    _, result = _drive(fine_tune(data, arch=TINY, config=_config(balanced_crops=True)))
    assert result is not None and result.model.info.provenance["recipe"]["balanced_crops"]


def test_augment_is_seeded_and_keeps_labels_aligned() -> None:
    rng = np.random.default_rng(0)
    rgb, labels = _shape_image(rng)
    weights = np.where(labels == 1, np.float16(2), np.float16(1))
    out = augment(rgb, labels, weights, np.random.default_rng(5), (48, 40))
    again = augment(rgb, labels, weights, np.random.default_rng(5), (48, 40))
    assert out[0].shape == (48, 40, 3) and out[1].shape == (48, 40) and out[2] is not None
    for x, y in zip(out, again, strict=True):
        np.testing.assert_array_equal(x, y)
    assert set(np.unique(out[1])) <= {0, 1, 2, UNLABELED}
    valid = out[1] != UNLABELED
    np.testing.assert_array_equal(out[2][valid] == 2, out[1][valid] == 1)
    assert (out[2][~valid] == 0).all()
    big = augment(rgb, labels, None, np.random.default_rng(1), 200)  # larger than the image
    assert big[1].shape == (200, 200) and (big[1] == UNLABELED).mean() > 0.5 and big[2] is None


def test_shards_cover_every_image_once_per_epoch() -> None:
    shards = [shard_indices(10, seed=0, epoch=3, rank=r, world_size=3) for r in range(3)]
    assert all(len(s) == 4 for s in shards)
    assert set(np.concatenate(shards)) == set(range(10))
    assert not np.array_equal(
        shard_indices(10, seed=0, epoch=4), shard_indices(10, seed=0, epoch=3)
    )


# --------------------------------------------------------------------------- the loop


def test_fine_tune_learns_the_shapes(data: TrainingData) -> None:
    cfg = _config(epochs=25, precision="auto", val_every_epochs=5)
    seen, result = _drive(fine_tune(data, arch=TINY, config=cfg))
    assert result is not None and result.stopped_early is None
    steps = [p for p in seen if p.kind == "step"]
    assert len(steps) == 75 and steps[-1].total_steps == 75 and steps[-1].epoch == 25
    assert all(p.loss is not None and np.isfinite(p.loss) for p in steps)
    assert steps[-1].eta_s == 0 and steps[-1].images_per_s > 0
    vals = [p for p in seen if p.kind == "validation" and p.metrics is not None]
    assert [p.epoch for p in vals] == [5, 10, 15, 20, 25]
    assert result.after is vals[-1].metrics and result.after["mean_iou"] > 0.6
    assert result.before is None and result.improved is None  # a new model: nothing to compare
    model = result.model
    assert not model.network.training and next(model.network.parameters()).dtype == torch.float32
    prov = model.info.provenance
    assert prov["train_images"] == 9 and prov["val_images"] == 3 and prov["steps"] == 75
    assert prov["train_names"][0] == "img00.png" and prov["recipe"] == cfg.to_dict()
    assert model.info.metrics["mean_iou"] == result.after["mean_iou"]
    again = evaluate(model, data.val)
    assert abs(again["mean_iou"] - result.after["mean_iou"]) < 0.02


def test_sparse_labels_still_train(data: TrainingData) -> None:
    """Only ~1 % of the pixels labelled (a 4 x 4 blob of each class per image), the rest 255."""
    rng = np.random.default_rng(7)
    sparse = []
    for s in data.train:
        labels = s.load_labels()
        keep = np.zeros(labels.shape, bool)
        for c in range(3):
            ys, xs = np.nonzero(labels == c)
            if len(ys):
                i = rng.integers(len(ys))
                keep[max(0, ys[i] - 2) : ys[i] + 2, max(0, xs[i] - 2) : xs[i] + 2] = True
        scribbles = np.where(keep, labels, UNLABELED).astype(np.uint8)
        sparse.append(Sample(s.name, s.image_path, labels=scribbles))
    assert np.mean([(x.labels != UNLABELED).mean() for x in sparse]) < 0.02
    scribbled = TrainingData(tuple(sparse), data.val, SHAPES, "scribbles")
    _, result = _drive(
        fine_tune(scribbled, arch=TINY, config=_config(epochs=25, val_every_epochs=25))
    )
    assert result is not None and result.after["mean_iou"] > 0.5


def test_corrected_pixels_weigh_more() -> None:
    target = torch.tensor([[[0, 1], [UNLABELED, 1]]])
    logits = torch.zeros(1, 3, 2, 2)
    w = torch.tensor([[[1.0, 2.0], [0.0, 1.0]]])
    loss = loop.weighted_cross_entropy(logits, target, w)
    assert loss.item() == pytest.approx(4 * np.log(3), rel=1e-6)


def test_cancel_is_prompt_and_leaves_nothing_behind(data: TrainingData, tmp_path: Path) -> None:
    threads = threading.active_count()
    ckpt = tmp_path / "ckpt"
    gen = fine_tune(data, arch=TINY, config=_config(epochs=50, checkpoint_every_s=1e-6),
                    checkpoint_dir=ckpt)  # fmt: skip
    for p in gen:
        if p.kind == "step" and p.step == 5:
            break
    t = time.perf_counter()
    gen.close()
    assert time.perf_counter() - t < 1.0
    assert sorted(os.listdir(ckpt)) == [CHECKPOINT_NAME]  # no temporary files
    assert checkpoint_info(ckpt)["step"] == 4  # the last one written before the close
    assert threading.active_count() == threads


def test_resume_reaches_the_same_end(data: TrainingData, tmp_path: Path) -> None:
    cfg = _config(epochs=3, checkpoint_every_s=1e-6)
    full_seen, full = _drive(fine_tune(data, arch=TINY, config=cfg))
    assert full is not None
    ckpt = tmp_path / "ckpt"
    first, none = _drive(fine_tune(data, arch=TINY, config=cfg, checkpoint_dir=ckpt), 5)
    assert none is None and checkpoint_info(ckpt)["step"] == 4
    rest, resumed = _drive(fine_tune(data, arch=TINY, config=cfg, checkpoint_dir=ckpt, resume=True))
    assert resumed is not None
    assert any(p.kind == "message" and "resumed from step 4" in p.message for p in rest)
    assert [p.step for p in rest if p.kind == "step"] == list(range(5, 10))
    assert resumed.model.info.provenance["steps"] == 9 == full.model.info.provenance["steps"]
    # fp32 on the CPU: the resumed run retraces the uninterrupted one exactly
    assert _losses(first)[:4] + _losses(rest) == _losses(full_seen)
    for k, v in _state(full).items():
        torch.testing.assert_close(resumed.model.network.state_dict()[k], v, rtol=0, atol=0)
    with pytest.raises(TrainingError, match=r"another training run.*lr 0\.01 -> 0\.02"):
        _drive(fine_tune(data, arch=TINY, config=_config(epochs=3, lr=2e-2), checkpoint_dir=ckpt,
                         resume=True))  # fmt: skip
    other = TrainingData(data.train[:8], data.val, SHAPES, "fewer")
    with pytest.raises(TrainingError, match="training data differ"):
        _drive(fine_tune(other, arch=TINY, config=cfg, checkpoint_dir=ckpt, resume=True))
    with pytest.raises(TrainingError, match="no checkpoint"):
        fine_tune(data, arch=TINY, config=cfg, checkpoint_dir=tmp_path / "none", resume=True)


def test_nan_loss_stops_with_the_last_good_weights(
    data: TrainingData, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real = loop.weighted_cross_entropy
    calls = {"n": 0}

    def poisoned(*args: Any) -> torch.Tensor:
        calls["n"] += 1
        out = real(*args)
        return out * float("nan") if calls["n"] == 4 else out

    monkeypatch.setattr(loop, "weighted_cross_entropy", poisoned)
    ckpt = tmp_path / "ckpt"
    cfg = _config(epochs=3, checkpoint_every_s=1e-6)
    seen, result = _drive(fine_tune(data, arch=TINY, config=cfg, checkpoint_dir=ckpt))
    assert result is not None and result.stopped_early is not None
    assert "NaN at step 4" in result.stopped_early
    assert [p.step for p in seen if p.kind == "step"] == [1, 2, 3]
    assert any(p.kind == "message" and "NaN" in p.message for p in seen)
    assert result.model.info.provenance["stopped_early"] == result.stopped_early
    state = result.model.network.state_dict()
    for v in state.values():
        assert torch.isfinite(v.float()).all()
    # the weights (and batch-norm statistics) are those of step 3, the last checkpoint
    assert checkpoint_info(ckpt)["step"] == 3
    with safe_open(str(ckpt / CHECKPOINT_NAME), framework="pt") as f:
        for k, v in state.items():
            torch.testing.assert_close(f.get_tensor(f"model.{k}"), v, rtol=0, atol=0)


def test_out_of_memory_splits_the_batch_and_goes_on(
    data: TrainingData, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = loop._forward
    calls = {"n": 0}

    def flaky(network: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        if calls["n"] == 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(network, x)

    monkeypatch.setattr(loop, "_forward", flaky)
    seen, result = _drive(fine_tune(data, arch=TINY, config=_config(epochs=2)))
    assert result is not None and result.stopped_early is None
    notes = [p.message for p in seen if p.kind == "message" and "out of memory" in p.message]
    assert len(notes) == 1 and "parts of 1" in notes[0]  # batch 3 -> micro-batches of 1
    assert [p.step for p in seen if p.kind == "step"] == list(range(1, 7))
    assert result.model.info.provenance["micro_batch"] == 1


def test_new_head_when_classes_differ_keeps_the_encoder(data: TrainingData) -> None:
    other = LabelSet("other", (LabelClass("a", (1, 2, 3)), LabelClass("b", (4, 5, 6))))
    init = new_model(TINY, other, seed=11)
    cfg = _config(epochs=1, freeze_encoder=True)
    seen, result = _drive(fine_tune(data, init=init, config=cfg))
    assert result is not None
    assert any("keeps the encoder and gets a new head" in p.message for p in seen)
    before = init.network.state_dict()
    after = result.model.network.state_dict()
    encoder = [k for k in before if k.startswith("encoder.")]
    assert encoder
    for k in encoder:  # frozen: weights and batch-norm statistics unchanged
        torch.testing.assert_close(after[k], before[k], rtol=0, atol=0)
    assert after["classifier.weight"].shape[0] == 3
    assert not torch.equal(after["decoder.0.0.weight"], before["decoder.0.0.weight"])
    assert result.model.info.labelset.same_classes(SHAPES)
    assert result.before is None and result.improved is None
    assert result.model.info.provenance["head"] == "new head, encoder kept"
    # the caller's model is never changed
    assert init.info.labelset is other and init.network.classifier.weight.shape[0] == 2


def test_fine_tune_from_a_model_reports_before_and_after(data: TrainingData) -> None:
    _, first = _drive(fine_tune(data, arch=TINY, config=_config(epochs=2)))
    assert first is not None
    _, second = _drive(fine_tune(data, init=first.model, config=_config(epochs=4)))
    assert second is not None
    assert second.before is not None and second.after is not None
    assert second.before["mean_iou"] == pytest.approx(first.after["mean_iou"], abs=1e-9)
    assert second.improved is (second.after["mean_iou"] > second.before["mean_iou"])
    parent = second.model.info.provenance["parent"]
    assert parent["provenance"]["kind"] == "trained" and "train_names" not in parent["provenance"]


@pytest.fixture(scope="module")
def trained(data: TrainingData) -> LoadedModel:
    """A model trained on the toy task (what a project fine-tunes from)."""
    _, result = _drive(fine_tune(data, arch=TINY, config=_config(epochs=6)))
    assert result is not None
    return result.model


def test_few_shot_fine_tune_never_lowers_the_validation_score(
    data: TrainingData, trained: LoadedModel
) -> None:
    few = TrainingData(data.train[:3], data.val, data.labelset, data.source)
    # even a recipe far too hot for a trained model cannot make it worse on validation
    for lr in (5e-4, 1.0):
        config = _config(**{**loop.FEW_SHOT, "lr": lr, "epochs": 4, "batch_size": 2})
        _, result = _drive(fine_tune(few, init=trained, config=config))
        assert result is not None and result.before is not None and result.after is not None
        assert result.after["mean_iou"] >= result.before["mean_iou"]
        assert result.verdict and "validation image(s)" in result.verdict


def test_keep_best_returns_the_starting_weights_when_nothing_beats_them(
    data: TrainingData, trained: LoadedModel
) -> None:
    config = _config(epochs=2, lr=5.0, keep_best=True, freeze_bn=True, warmup_steps=0)
    reports, result = _drive(fine_tune(data, init=trained, config=config))
    assert result is not None and result.improved is False
    assert "no epoch beat the starting model" in result.verdict
    assert any("kept the starting weights" in r.message for r in reports)
    for key, value in trained.network.state_dict().items():
        torch.testing.assert_close(result.model.network.state_dict()[key], value)


def test_freeze_bn_keeps_the_statistics_and_patience_stops_early(
    data: TrainingData, trained: LoadedModel
) -> None:
    config = _config(epochs=30, lr=5.0, freeze_bn=True, keep_best=True, patience=2)
    reports, result = _drive(fine_tune(data, init=trained, config=config))
    assert result is not None
    assert any("stopping early" in r.message for r in reports)
    assert result.model.info.provenance["steps"] < 30 * math.ceil(len(data.train) / 3)
    for key, value in trained.network.state_dict().items():
        if key.endswith(("running_mean", "running_var")):
            torch.testing.assert_close(result.model.network.state_dict()[key], value)


def test_no_verdict_on_too_few_validation_pixels(data: TrainingData, trained: LoadedModel) -> None:
    config = _config(epochs=1, verdict_pixels=10**9)
    _, result = _drive(fine_tune(data, init=trained, config=config))
    assert result is not None and result.improved is None
    assert "too few to judge" in result.verdict


def test_same_seed_same_losses(data: TrainingData) -> None:
    cfg = _config(epochs=2, val_every_epochs=2)
    a, _ = _drive(fine_tune(data, arch=TINY, config=cfg))
    b, _ = _drive(fine_tune(data, arch=TINY, config=cfg))
    c, _ = _drive(fine_tune(data, arch=TINY, config=_config(epochs=2, seed=1)))
    assert _losses(a) == _losses(b)
    assert _losses(a) != _losses(c)


def test_time_budget(data: TrainingData) -> None:
    seen, result = _drive(fine_tune(data, arch=TINY, config=_config(epochs=None, minutes=0.01)))
    assert result is not None
    steps = [p for p in seen if p.kind == "step"]
    assert steps and steps[-1].total_steps is None
    assert result.model.info.provenance["duration_s"] < 5


def test_fine_tune_argument_errors(data: TrainingData) -> None:
    with pytest.raises(TrainingError, match="exactly one"):
        fine_tune(data)
    with pytest.raises(TrainingError, match="exactly one"):
        fine_tune(data, init=new_model(TINY, SHAPES), arch=TINY)
    with pytest.raises(TrainingError, match="checkpoint folder"):
        fine_tune(data, arch=TINY, resume=True)


# --------------------------------------------------------------------------- command line


def test_cli_train_writes_a_loadable_model(
    shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "m.safetensors"
    code = main(["train", str(shapes), "--arch", "segnet_basic", "--width", "0.25",
                 "--epochs", "2", "--crop", "64", "--out", str(out)])  # fmt: skip
    assert code == 0
    model = load_model(out)
    assert model.info.labelset.same_classes(SHAPES) and model.info.arch.name == "segnet_basic"
    assert (tmp_path / "m.safetensors.ckpt" / CHECKPOINT_NAME).is_file()
    text = capsys.readouterr().out
    assert "after:  mean IoU" in text and "improved: not comparable" in text
    code = main(["train", str(shapes), "--init", str(out), "--epochs", "1", "--crop", "64",
                 "--out", str(tmp_path / "m2.safetensors")])  # fmt: skip
    assert code == 0
    text = capsys.readouterr().out
    assert "before: mean IoU" in text and "improved: " in text
    assert load_model(tmp_path / "m2.safetensors").info.provenance["parent"]["path"] == str(out)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_every_architecture_trains_predicts_and_evaluates_from_the_cli(
    arch: str, shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / f"{arch}.safetensors"
    code = main(["train", str(shapes), "--arch", arch, "--width", "0.125", "--epochs", "1",
                 "--crop", "64", "--out", str(out)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert load_model(out).info.arch.name == arch
    pred = tmp_path / "pred"
    assert main(["predict", str(shapes / "images"), "--model", str(out), "--out", str(pred)]) == 0
    for i in range(12):
        index = np.asarray(Image.open(pred / f"img{i:02d}.png"))
        assert index.shape == (SIZE, SIZE) and index.max() < SHAPES.num_classes
    capsys.readouterr()
    code = main(["eval", "--model", str(out), "--images", str(shapes / "images"),
                 "--labels", str(shapes / "labels"), "--json"])  # fmt: skip
    assert code == 0
    assert 0.0 <= json.loads(capsys.readouterr().out)["mean_iou"] <= 1.0


@pytest.mark.parametrize("arch", ["unet", "fcn8s", "deconvnet", "deeplab", "pspnet"])
def test_every_family_fine_tunes_and_keeps_its_encoder(data: TrainingData, arch: str) -> None:
    """Each architecture trains through the engine, and a new head keeps the encoder."""
    spec = ArchSpec(arch, {"width": 0.125})
    result = _drive(fine_tune(data, arch=spec, config=_config(epochs=1)))[1]
    assert result is not None and result.after is not None
    other = LabelSet("two", (LabelClass("a", (1, 2, 3)), LabelClass("b", (4, 5, 6))))
    init = new_model(spec, other, seed=5)
    result = _drive(fine_tune(data, init=init, config=_config(epochs=1, freeze_encoder=True)))[1]
    assert result is not None
    trained = result.model.network.state_dict()
    for key, value in init.network.state_dict().items():
        if key.startswith("encoder.") and value.is_floating_point() and "running" not in key:
            assert torch.equal(trained[key], value), key


def test_cli_resume_starts_then_continues_the_same_run(
    shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One documented command: the first call starts the run, later calls resume it."""
    out, ckpt = tmp_path / "r.safetensors", tmp_path / "ckpt"
    argv = ["train", str(shapes), "--arch", "segnet_basic", "--width", "0.25", "--epochs", "2",
            "--crop", "64", "--checkpoint-dir", str(ckpt), "--resume",
            "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    assert "starting a new run" in capsys.readouterr().err
    steps = load_model(out).info.provenance["steps"]
    assert main(argv) == 0  # the finished run's checkpoint: nothing left to do
    assert load_model(out).info.provenance["steps"] == steps


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--init", "x.safetensors", "--arch", "segnet"], "not allowed with argument"),
        (["--epochs", "2", "--minutes", "1"], "not allowed with argument"),
        (["--epochs", "0"], "epochs is 0"),
        (["--batch-size", "0"], "batch_size"),
        (["--val-fraction", "1.5"], "--val-fraction"),
        (["--arch", "resnet"], "unknown architecture"),
    ],
)
def test_cli_train_bad_arguments_exit_2(
    shapes: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    needle: str,
) -> None:
    out = tmp_path / "m.safetensors"
    code = main(["train", str(shapes), "--out", str(out), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and needle in err[0], err
    assert not out.exists()


def test_cli_train_bad_paths_exit_2(
    shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", str(shapes), "--out", str(tmp_path / "m.txt")]) == 2
    assert main(["train", str(tmp_path / "nope"), "--out", str(tmp_path / "m.safetensors")]) == 2
    assert main(["train", str(tmp_path), "--out", str(tmp_path / "m.safetensors")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and "not a dataset folder" in err[2]


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed unavailable")
def test_torchrun_ddp_two_processes(shapes: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp.safetensors"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "segstudio", "train", str(shapes), "--arch", "segnet_basic", "--width", "0.25",
           "--epochs", "1", "--crop", "64", "--out", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    model = load_model(out)
    assert model.info.labelset.same_classes(SHAPES) and model.info.arch.name == "segnet_basic"
    prov = model.info.provenance
    per_rank = -(-prov["train_images"] // 2)
    assert prov["world_size"] == 2 and prov["steps"] == -(-per_rank // 4)
    assert proc.stdout.count("wrote ") == 1  # only rank 0 reports and writes


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed unavailable")
def test_torchrun_with_empty_crops_and_a_time_budget_does_not_hang(tmp_path: Path) -> None:
    """A rank whose crops hold no labelled pixel, and a time budget, keep the ranks in step."""
    root = _write_dataset(tmp_path / "sparse", n=8, seed=3)
    for i in range(0, 8, 2):  # half the images carry no labels at all
        path = root / "labels" / f"img{i:02d}.png"
        Image.fromarray(np.full((SIZE, SIZE), UNLABELED, np.uint8)).save(path)
    out = tmp_path / "ddp.safetensors"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "segstudio", "train", str(root), "--arch", "segnet_basic", "--width", "0.25",
           "--minutes", "0.1", "--batch-size", "1", "--crop", "64", "--val-fraction", "0.25",
           "--out", str(out)]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert load_model(out).info.provenance["world_size"] == 2


def test_cancel_callback_interrupts_a_step(data: TrainingData) -> None:
    """The cancel callback is polled inside the step: the step in flight is dropped."""
    import itertools

    from segstudio.training.loop import TrainingCancelled

    for polls in (2, 7):  # inside the first step's forward, then inside its backward
        calls = itertools.count()
        gen = fine_tune(
            data, arch=TINY, config=_config(), cancel=lambda n=polls, c=calls: next(c) >= n
        )
        kinds = []
        with pytest.raises(TrainingCancelled):
            for p in gen:
                kinds.append(p.kind)
        assert "step" not in kinds  # the first step never finished
    # a run that is not cancelled returns a model without the polling hooks
    result = _drive(fine_tune(data, arch=TINY, config=_config(epochs=1), cancel=lambda: False))[1]
    assert result is not None
    assert not any(m._forward_pre_hooks for m in result.model.network.modules())


def test_cli_refuses_to_overwrite_an_earlier_runs_checkpoint(
    shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = tmp_path / "ckpt"
    argv = ["train", str(shapes), "--arch", "segnet_basic", "--width", "0.25", "--epochs", "1",
            "--crop", "64", "--checkpoint-dir", str(ckpt),
            "--out", str(tmp_path / "a.safetensors")]  # fmt: skip
    assert main(argv) == 0
    capsys.readouterr()
    assert main(argv) == 2  # the same command again would start over the old checkpoint
    assert "--resume" in capsys.readouterr().err


def test_an_index_export_trains_on_its_own_split(shapes: Path, tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "exported"
    shutil.copytree(shapes, root)
    (root / "train.txt").write_text("".join(f"img{i:02d}\n" for i in range(6)))
    (root / "val.txt").write_text("img06\nimg07\n")
    (root / "test.txt").write_text("".join(f"img{i:02d}\n" for i in range(8, 12)))
    data = from_folder(root)
    assert sorted(Path(s.name).stem for s in data.train) == [f"img{i:02d}" for i in range(6)]
    assert sorted(Path(s.name).stem for s in data.val) == ["img06", "img07"]


def test_training_time_counts_every_resumed_run(
    data: TrainingData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _config(epochs=2, checkpoint_every_s=1e-6)
    ckpt = tmp_path / "ckpt"
    _, none = _drive(fine_tune(data, arch=TINY, config=cfg, checkpoint_dir=ckpt), 3)
    assert none is None
    read = loop._read_checkpoint

    def an_hour_earlier(folder: Path):  # as if the first run had trained for an hour
        meta, path = read(folder)
        return {**meta, "elapsed_s": meta["elapsed_s"] + 3600.0}, path

    monkeypatch.setattr(loop, "_read_checkpoint", an_hour_earlier)
    _, resumed = _drive(fine_tune(data, arch=TINY, config=cfg, checkpoint_dir=ckpt, resume=True))
    assert resumed is not None
    assert 3600 < resumed.model.info.provenance["duration_s"] < 3600 + 600
