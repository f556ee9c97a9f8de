"""Training: data from a project or a dataset folder, augmentation, the fine-tune loop, DDP.

This package imports torch (through :mod:`segstudio.model`) and never Qt. The
window runs :func:`~segstudio.training.loop.fine_tune` in a worker thread; the
``segstudio train`` command runs it in the foreground (or under ``torchrun``).

Modules by job: :mod:`.config` (the recipe and the result), :mod:`.events`
(what the loop yields), :mod:`.loop` (the loop), :mod:`.step` (one optimisation
step), :mod:`.precision` (device, bf16 or fp32), :mod:`.evaluate` (scoring a
model on labelled images), :mod:`.checkpoint` (write, read, resume),
:mod:`.lineage` (the starting network and the provenance), :mod:`.data`,
:mod:`.augment`, :mod:`.ddp`, :mod:`.recipes` and :mod:`.live` (the live learner).
"""
