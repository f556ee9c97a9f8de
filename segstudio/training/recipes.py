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
#: frames with the final weights, the decoder alone and light augmentation.
#:
#: ``replay`` (on since 2026-12-04): from a model that knows every class of the
#: project, its sure answers on 10 of the project's unlabelled images are
#: learnt too. With the bundled model, 10 frames of a drive, on the later
#: frames it never trained on: +0.039 on the CamVid val drive (+0.030
#: without), +0.062 on the dusk drive 0001TP (+0.042 without), and -0.022 on
#: drive 0006R0, which the model was trained on (-0.056 without).
#:
#: ``live_head`` (on since 2026-12-04 night): the live learner then reads the
#: fine-tuned SegNet and fits its head on the training images (and replays);
#: it is handed back only when it beats the start and the network alone on the
#: held-out images. Same measure, one run per drive (AVX2 cap): +0.103 on the
#: val drive (the network alone +0.039), +0.080 on 0001TP (alone +0.061), and
#: -0.020 on 0006R0 (alone -0.022): more on the drives the model never saw, the
#: same where it knew the drive.
FEW_SHOT: dict[str, Any] = {
    "lr": 5e-4,
    "encoder_lr_factor": 0.1,
    "freeze_bn": True,
    "keep_best": True,
    "patience": 6,
    "warmup_steps": 5,
    "weight_decay": 1e-4,
    "replay": True,
    "live_head": True,
}
