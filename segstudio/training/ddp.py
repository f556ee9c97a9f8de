"""Distributed data-parallel training under ``torchrun``.

``torchrun --nproc_per_node N -m segstudio train ...`` starts N processes with
``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` (and the rendezvous address) in
their environment. :func:`distributed` reads them, joins the process group
(``gloo`` on the CPU, ``nccl`` on CUDA, one GPU per local rank) and always
leaves it again, also when training fails. Inside it,
:func:`segstudio.training.loop.fine_tune` notices the group
(:func:`current`): it wraps the network in
:class:`~torch.nn.parallel.DistributedDataParallel` (gradients are averaged
across processes), gives each rank its own share of every epoch's shuffled
training images (:func:`shard_indices`), and lets only rank 0 validate, write
checkpoints and report. Without ``torchrun`` nothing here does anything and
training runs in one process.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import torch

from segstudio.core.errors import TrainingError

__all__ = [
    "DistEnv",
    "all_reduce_sum",
    "current",
    "distributed",
    "env_from_environ",
    "shard_indices",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistEnv:
    """This process's place in a distributed run (rank 0 of 1 when alone)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that validates, writes files and reports."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


SINGLE = DistEnv()


def env_from_environ(environ: Mapping[str, str] | None = None) -> DistEnv | None:
    """The ranks ``torchrun`` put in the environment, or None outside ``torchrun``.

    Raises
    ------
    TrainingError
        The variables are there but not valid integers, or the ranks are out of range.
    """
    environ = os.environ if environ is None else environ
    if "WORLD_SIZE" not in environ:
        return None
    try:
        world = int(environ["WORLD_SIZE"])
        rank = int(environ.get("RANK", "0"))
        local = int(environ.get("LOCAL_RANK", str(rank)))
    except ValueError as exc:
        raise TrainingError(
            f"bad torchrun environment (WORLD_SIZE/RANK/LOCAL_RANK): {exc}"
        ) from exc
    if world < 1 or not 0 <= rank < world or local < 0:
        raise TrainingError(f"bad torchrun environment: rank {rank} of world size {world}")
    return DistEnv(rank, world, local)


def current() -> DistEnv:
    """This process's rank and world size: from the initialised process group, else single."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        return DistEnv(dist.get_rank(), dist.get_world_size(), local)
    return SINGLE


@contextlib.contextmanager
def distributed(device: str = "auto") -> Iterator[DistEnv]:
    """Join the ``torchrun`` process group for the duration of the block.

    Outside ``torchrun`` (or with a world of one) it yields the single-process
    environment and does nothing. Otherwise it initialises the group, ``nccl``
    when the processes train on CUDA GPUs (each on ``cuda:LOCAL_RANK``) and
    ``gloo`` on the CPU, and destroys it on the way out, also after an error.

    Raises
    ------
    TrainingError
        ``torch.distributed`` is not available in this build of torch.
    """
    env = env_from_environ()
    if env is None or not env.distributed:
        yield SINGLE
        return
    dist = torch.distributed
    if not dist.is_available():
        raise TrainingError("this build of torch has no torch.distributed; run without torchrun")
    use_cuda = device.lower() != "cpu" and not device.lower().startswith("mps")
    use_cuda = use_cuda and torch.cuda.is_available()
    backend = "nccl" if use_cuda else "gloo"
    if use_cuda:
        torch.cuda.set_device(env.local_rank % max(1, torch.cuda.device_count()))
    dist.init_process_group(backend=backend, rank=env.rank, world_size=env.world_size)
    log.info("rank %d of %d joined the %s process group", env.rank, env.world_size, backend)
    try:
        yield env
        if dist.is_initialized():
            # leave together: a rank that tears its gloo threads down while rank 0
            # still validates and writes may abort at exit ("terminate called...")
            dist.barrier()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def shard_indices(
    n: int, *, seed: int, epoch: int, rank: int = 0, world_size: int = 1
) -> np.ndarray:
    """This rank's share of one epoch's training order (like ``DistributedSampler``).

    The order is a permutation of ``0..n-1`` seeded by ``(seed, epoch)``, so
    every rank draws the same one and each epoch differs (what
    ``DistributedSampler.set_epoch`` does). It is padded by wrapping around to
    a multiple of ``world_size``, and rank ``r`` takes every ``world_size``-th
    entry from ``r``, so all ranks get the same number of images.
    """
    order = np.random.default_rng([seed, epoch]).permutation(n)
    per_rank = math.ceil(n / world_size)
    padded = np.resize(order, per_rank * world_size)
    return padded[rank::world_size]


def all_reduce_sum(tensor: torch.Tensor, env: DistEnv) -> torch.Tensor:
    """Sum ``tensor`` over all ranks, in place (nothing to do in a single process)."""
    if env.distributed:
        torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.SUM)
    return tensor
