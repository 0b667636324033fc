"""Data-parallel training with PyTorch DistributedDataParallel: ``graphrec train --ddp N``.

The calling process is rank 0 and goes on doing what it does (progress, the artifact); ranks
1..N-1 are spawned processes that run the same :class:`graphrec.learn.train.Trainer` on the same data.
Every epoch's shuffled training pairs are split between the ranks (as PyTorch's
``DistributedSampler`` does), each rank takes steps of ``batch_size`` pairs from its share, and DDP
averages the gradients, so every rank holds the same weights after every step: an epoch takes
1/N of the steps and the global batch is N x ``batch_size``. Rank 0 decides when to stop
(validation, time budget) and the others follow.

Here the backend is gloo on CPU processes, which is what this machine has. The same code runs on
GPUs with ``backend="nccl"`` and one process per GPU (``TrainConfig.device`` = ``cuda:<rank>``);
with full-graph propagation every rank still propagates the whole graph each step, so the gain
is in the sharded loss and backward over batches. Graphs too large for one device's memory need
sampled subgraphs per rank (PyG's loaders) or a distributed feature and graph store
(cuGraph-PyG / WholeGraph): see docs/scale.md.
"""

from __future__ import annotations

import multiprocessing
import os
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Callable, Iterator, Protocol

import torch
import torch.distributed as dist

if TYPE_CHECKING:
    from graphrec.learn.config import TrainConfig
    from graphrec.learn.interactions import Interactions


class _Fits(Protocol):
    def fit(self) -> Any: ...


# What each rank runs: ``trainer(data, config).fit()`` (graphrec.learn.train.Trainer). Passed in,
# not imported: the loop imports this module, so this module must not import the loop.
TrainerClass = Callable[["Interactions", "TrainConfig"], _Fits]

# A collective that waits longer than this means a rank died or hung: fail instead of waiting forever.
COLLECTIVE_TIMEOUT = timedelta(minutes=10)


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) inside a process group, (0, 1) outside one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def threads_per_rank(world_size: int) -> int:
    """CPU threads for each rank's torch ops: the machine's cores shared out, at least one."""
    return max(1, (os.cpu_count() or 1) // world_size)


def _join(init_method: str, rank: int, world_size: int) -> None:
    dist.init_process_group("gloo", init_method=init_method, rank=rank, world_size=world_size,
                            timeout=COLLECTIVE_TIMEOUT)


def _rank_main(init_method: str, rank: int, world_size: int, trainer: TrainerClass, data: "Interactions",
               config: "TrainConfig") -> None:
    """A spawned rank: the same trainer on the same data, in the group; its result is rank 0's."""
    torch.set_num_threads(threads_per_rank(world_size))
    _join(init_method, rank, world_size)
    try:
        trainer(data, config).fit()
    finally:
        dist.destroy_process_group()


@contextmanager
def process_group(world_size: int, trainer: TrainerClass, data: "Interactions",
                  config: "TrainConfig") -> Iterator[None]:
    """Make this process rank 0 of a gloo group of ``world_size`` training processes.

    Inside the block, ``trainer(data, config).fit()`` trains data-parallel (the spawned ranks run
    the same call). A rank that fails makes the block raise."""
    from graphrec.neo4j.server import free_port

    if world_size < 2:
        yield
        return
    init_method = f"tcp://127.0.0.1:{free_port()}"
    ctx = multiprocessing.get_context("spawn")  # fork would copy torch's thread pools
    ranks = [ctx.Process(target=_rank_main, args=(init_method, r, world_size, trainer, data, config),
                         name=f"graphrec-train-rank{r}", daemon=True) for r in range(1, world_size)]
    for p in ranks:
        p.start()
    threads = torch.get_num_threads()
    torch.set_num_threads(threads_per_rank(world_size))
    _join(init_method, 0, world_size)
    try:
        yield
    finally:
        dist.destroy_process_group()
        torch.set_num_threads(threads)
        for p in ranks:
            p.join(timeout=60)
            if p.is_alive():
                p.terminate()
    failed = [p.name for p in ranks if p.exitcode != 0]
    if failed:
        raise RuntimeError(f"distributed training: {', '.join(failed)} failed (see its output above)")
