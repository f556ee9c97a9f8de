"""Distributed training: epoch shards, and real two-process runs under torchrun."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from segstudio.core.labelset import UNLABELED
from segstudio.model.files import load_model
from segstudio.training.ddp import shard_indices
from tests.unit.training.toy import SHAPES, SIZE, write_dataset


def test_shards_cover_every_image_once_per_epoch() -> None:
    shards = [shard_indices(10, seed=0, epoch=3, rank=r, world_size=3) for r in range(3)]
    assert all(len(s) == 4 for s in shards)
    assert set(np.concatenate(shards)) == set(range(10))
    assert not np.array_equal(
        shard_indices(10, seed=0, epoch=4), shard_indices(10, seed=0, epoch=3)
    )


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
    root = write_dataset(tmp_path / "sparse", n=8, seed=3)
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
