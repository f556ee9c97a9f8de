"""Fault injection: kill -9 a fine-tune at random moments, resume it, and reach the very
weights of a run that was never interrupted (fp32 on the CPU), with no temp files left."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.numpy import load_file

from tests.unit.training.toy import write_dataset

REPO = Path(__file__).resolve().parents[3]
TRIALS = 4

CHILD = r"""
import sys
from pathlib import Path
from segstudio.core.jobs import drive
from segstudio.model.files import save_model
from segstudio.training.checkpoint import CHECKPOINT_NAME
from segstudio.training.data import from_folder
from tests.unit.training.toy import TINY, toy_config

data_dir, ckpt, out = (Path(a) for a in sys.argv[1:4])
data = from_folder(data_dir, seed=0)
config = toy_config(epochs=4, checkpoint_every_s=1e-6, precision="fp32", device="cpu")
resume = ckpt is not None and (ckpt / CHECKPOINT_NAME).is_file()
from segstudio.training.loop import fine_tune
gen = fine_tune(data, arch=TINY, config=config, checkpoint_dir=ckpt, resume=resume)
result = drive(gen)
save_model(out, result.model)
"""


def _run(data: Path, ckpt: Path, out: Path, kill_after: float | None) -> int:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(data), str(ckpt), str(out)],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    if kill_after is not None:
        time.sleep(kill_after)
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
    _, err = child.communicate(timeout=300)
    assert child.returncode in (0, -signal.SIGKILL), err.decode()[-2000:]
    return child.returncode


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs kill -9")
def test_kill_9_then_resume_reaches_the_uninterrupted_weights(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "data", n=10)
    reference = tmp_path / "reference.safetensors"
    t0 = time.monotonic()
    assert _run(data, tmp_path / "ref-ckpt", reference, None) == 0
    duration = time.monotonic() - t0
    expected = load_file(str(reference))
    rng = random.Random(7)
    killed = 0
    for trial in range(TRIALS):
        ckpt, out = tmp_path / f"ckpt{trial}", tmp_path / f"out{trial}.safetensors"
        # kill somewhere in the run (start-up included), then resume until it ends
        if _run(data, ckpt, out, rng.uniform(0.3, duration * 0.9)) != 0:
            killed += 1
            # the output is written atomically: a kill leaves none, or (when it came
            # after the final write, on the way out) the whole of it, checked below
            if not out.exists():
                assert _run(data, ckpt, out, None) == 0
        got = load_file(str(out))
        assert got.keys() == expected.keys()
        for name, value in expected.items():
            assert (got[name] == value).all(), f"trial {trial}: {name} differs after resume"
        leftovers = [p.name for p in ckpt.iterdir() if ".tmp" in p.name]
        assert not leftovers, f"trial {trial}: temp files left: {leftovers}"
    assert killed >= 1  # at least one trial was really cut short
