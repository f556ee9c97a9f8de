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
#:
#: ``replay`` (on since 2026-12-04): from a model that knows every class of the
#: project, its sure answers on 10 of the project's unlabelled images are
#: learnt too. With the bundled model, 10 frames of a drive, on the later
#: frames it never trained on: +0.039 on the CamVid val drive (+0.030
#: without), +0.062 on the dusk drive 0001TP (+0.042 without), and -0.022 on
#: drive 0006R0, which the model was trained on (-0.056 without).
FEW_SHOT: dict[str, Any] = {
    "lr": 5e-4,
    "encoder_lr_factor": 0.1,
    "freeze_bn": True,
    "keep_best": True,
    "patience": 6,
    "warmup_steps": 5,
    "weight_decay": 1e-4,
    "replay": True,
}
