"""Training: data from a project or a dataset folder, augmentation, the fine-tune loop, DDP.

This package imports torch (through :mod:`segstudio.model`) and never Qt. The
window runs :func:`~segstudio.training.loop.fine_tune` in a worker thread; the
``segstudio train`` command runs it in the foreground (or under ``torchrun``).
"""
