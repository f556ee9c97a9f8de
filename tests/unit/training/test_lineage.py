"""The starting network (new, copied, or a new head on a kept encoder) and the lineage
a trained model carries."""

from __future__ import annotations

import pytest
import torch

from segstudio.core.labelset import LabelClass, LabelSet
from segstudio.model.arch import ArchSpec
from segstudio.model.files import new_model
from segstudio.training.data import TrainingData
from segstudio.training.loop import fine_tune
from tests.unit.training.toy import SHAPES, TINY, drive, toy_config


def test_new_head_when_classes_differ_keeps_the_encoder(data: TrainingData) -> None:
    other = LabelSet("other", (LabelClass("a", (1, 2, 3)), LabelClass("b", (4, 5, 6))))
    init = new_model(TINY, other, seed=11)
    cfg = toy_config(epochs=1, freeze_encoder=True)
    seen, result = drive(fine_tune(data, init=init, config=cfg))
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


@pytest.mark.parametrize("arch", ["unet", "fcn8s", "deconvnet", "deeplab", "pspnet"])
def test_every_family_fine_tunes_and_keeps_its_encoder(data: TrainingData, arch: str) -> None:
    """Each architecture trains through the engine, and a new head keeps the encoder."""
    spec = ArchSpec(arch, {"width": 0.125})
    result = drive(fine_tune(data, arch=spec, config=toy_config(epochs=1)))[1]
    assert result is not None and result.after is not None
    other = LabelSet("two", (LabelClass("a", (1, 2, 3)), LabelClass("b", (4, 5, 6))))
    init = new_model(spec, other, seed=5)
    result = drive(fine_tune(data, init=init, config=toy_config(epochs=1, freeze_encoder=True)))[1]
    assert result is not None
    trained = result.model.network.state_dict()
    for key, value in init.network.state_dict().items():
        if key.startswith("encoder.") and value.is_floating_point() and "running" not in key:
            assert torch.equal(trained[key], value), key
