"""The bundled CamVid model: small, documented, and its card's figures are what eval prints.

Skipped in a build without the model file; the CamVid tests skip without the data.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from segstudio.cli import main
from segstudio.core.bundled import BUNDLED_ENV, bundled_model_path
from segstudio.core.labelset import preset
from segstudio.io.images import read_label_map
from segstudio.model.files import read_model_info

MAX_BYTES = 25_000_000


@pytest.fixture
def bundled(monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(BUNDLED_ENV, raising=False)
    path = bundled_model_path()
    if path is None:
        pytest.skip("this build has no bundled model")
    return path


def _card_figure(card: str, label: str) -> float:
    match = re.search(rf"\| \**{label}\** \| \**([0-9.]+) %\**", card)
    assert match, f"no {label} in the model card"
    return float(match.group(1)) / 100


def test_bundled_model_is_small_camvid_and_has_a_card(bundled: Path) -> None:
    assert bundled.stat().st_size <= MAX_BYTES
    info = read_model_info(bundled)
    assert info.labelset.same_classes(preset("camvid11"))
    assert info.arch.name == "segnet"
    prov = info.provenance
    if prov["kind"] == "fine-tuned":  # distilled from a bigger model: its first stage trained
        assert prov["teacher"]["arch"]["name"] == "segnet"
        assert prov["parent"]["provenance"]["kind"] == "trained"
    else:
        assert prov["kind"] == "trained"
    card = bundled.with_suffix(".md").read_text(encoding="utf-8")
    for label in ("pixel accuracy", "mean class accuracy", "mean IoU"):
        assert 0.0 < _card_figure(card, label) <= 1.0


def test_eval_without_model_prints_the_cards_figures(
    bundled: Path, camvid: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["eval", str(camvid / "val"), "--json", "--precision", "fp32"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["images"] == 101 and result["void"] == 11 and result["path"] == "fp32"
    card = bundled.with_suffix(".md").read_text(encoding="utf-8")
    # the card's quality table is float32 (each faster path's mean IoU is in its speed
    # section) and rounds to 0.1 %; float32 kernels of another CPU may move a few pixels
    for key, label in (
        ("pixel_accuracy", "pixel accuracy"),
        ("mean_accuracy", "mean class accuracy"),
        ("mean_iou", "mean IoU"),
    ):
        assert result[key] == pytest.approx(_card_figure(card, label), abs=0.003), key


def test_predict_without_model_gives_good_camvid_masks(
    bundled: Path, camvid: Path, tmp_path: Path
) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    names = sorted(p.name for p in (camvid / "val").iterdir())[::25]
    for name in names:
        (frames / name).symlink_to(camvid / "val" / name)
    assert main(["predict", str(frames), "--out", str(tmp_path / "pred")]) == 0
    for name in names:
        pred = read_label_map(tmp_path / "pred" / name)
        truth = read_label_map(camvid / "valannot" / name)
        known = truth != 11
        accuracy = float(np.mean(pred[known] == truth[known]))
        assert accuracy > 0.75, (name, accuracy)
