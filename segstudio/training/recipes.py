"""Named training recipes, as plain values (no torch: the window reads them at start-up)."""

from __future__ import annotations

from typing import Any

#: A fine-tune of a trained model on the few images of a labelling project:
#: small steps for the trained encoder, batch-norm statistics kept (batches of a
#: few images would overwrite them with noise), validation after every epoch,
#: the best weights kept (so a run never ends worse than it started, on the
#: validation images) and an early stop once validation stops improving.
#:
#: Measured against it (``benchmarks/bench_finetune.py``, README "The model
#: loop") and left off: class-balanced crops, training on all the labelled
#: frames with the final weights, the decoder alone, light augmentation, and a
#: live head on the fine-tuned network (``live_head``: +0.063 on the CamVid val
#: drive with replay, but it lowered the later frames of a CamVid train drive
#: the model knew by 0.043, and by 0.16 without replay).
FEW_SHOT: dict[str, Any] = {
    "lr": 5e-4,
    "encoder_lr_factor": 0.1,
    "freeze_bn": True,
    "keep_best": True,
    "patience": 6,
    "warmup_steps": 5,
    "weight_decay": 1e-4,
}
