"""Reproducible data: the order of an epoch and the augmentation of every sample come from ``(seed, epoch)`` alone.

Each item is loaded with Python's, NumPy's and torch's global generators seeded for it (``SeededItems``), in an
order drawn from ``(seed, epoch)`` and cut into global batches, then into each process's share of them
(``SeededBatches``). So the same config gives the same batches whatever ``data.workers`` and the number of
processes are, and a run can restart at any iteration, with as many processes as it likes, and see the
batches it would have seen.
"""

import contextlib
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..config import Config
from ..data import TaskDataset
from ..distributed import Processes
from ..errors import DLAError


class SeededBatches(Sampler[list[tuple[int, int]]]):
    """This process's batches of an epoch, each sample with the seed of its augmentation; all from ``(seed, epoch)``.

    The epoch's order is drawn from ``(seed, epoch)`` alone and cut into global batches of ``batch_size``
    samples, one per iteration (the last partial batch is dropped; a training set smaller than one batch is
    one batch). Each global batch is cut into ``accumulate x world_size`` equal micro-batches, and this
    process takes micro-batch ``step x world_size + rank`` at accumulation step ``step``. So an iteration
    trains on the same samples, augmented the same way, whatever the number of processes and loader workers.

    Yields lists of ``(index, item_seed)`` pairs, which ``SeededItems`` understands; ``set_epoch(epoch, skip)``
    selects the epoch and leaves out its first ``skip`` iterations (to resume mid-epoch).
    """

    def __init__(self, size: int, seed: int, batch_size: int, accumulate: int = 1, rank: int = 0, world_size: int = 1) -> None:
        parts = accumulate * world_size
        if batch_size % parts:
            raise DLAError(
                f"data.batch_size {batch_size} (the global batch) does not split into {world_size} processes x "
                f"{accumulate} accumulation steps (optim.accumulate); make it a multiple of {parts}"
            )
        if size < batch_size and parts > 1:
            raise DLAError(
                f"the training set has {size} samples, fewer than one global batch (data.batch_size {batch_size}) to split "
                f"into {world_size} processes x {accumulate} accumulation steps; lower data.batch_size to {size} or less"
            )
        self.size, self.seed, self.batch_size = size, seed, batch_size
        self.accumulate, self.rank, self.world_size = accumulate, rank, world_size
        self.micro_batch = batch_size // parts
        self.iterations = max(1, size // batch_size)  # iterations per epoch
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        order = epoch_order(self.size, self.seed, self.epoch)
        for iteration in range(self.skip, self.iterations):
            batch = order[iteration * self.batch_size : (iteration + 1) * self.batch_size]
            for step in range(self.accumulate):
                part = step * self.world_size + self.rank
                yield batch[part * self.micro_batch : (part + 1) * self.micro_batch]

    def __len__(self) -> int:
        return (self.iterations - self.skip) * self.accumulate


def epoch_order(size: int, seed: int, epoch: int) -> list[tuple[int, int]]:
    """The ``(index, item_seed)`` of every sample in the order of ``epoch``, drawn from ``(seed, epoch)`` alone."""
    epoch_seed = int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])
    generator = torch.Generator().manual_seed(epoch_seed)
    indices = torch.randperm(size, generator=generator).tolist()
    item_seeds = torch.randint(2**31, (size,), generator=generator).tolist()
    return list(zip(indices, item_seeds, strict=True))


class SeededItems(Dataset):
    """``dataset[index]`` computed with Python's, NumPy's and torch's global generators seeded by ``item_seed``
    (and restored afterwards), so that random augmentation depends on the seed alone: not on the worker
    process, on what was loaded before, or on the training process's own use of the generators."""

    def __init__(self, dataset: TaskDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, item_seed = key
        with _seeded_generators(item_seed):
            return self.dataset[index]


def make_train_loader(
    dataset: TaskDataset, cfg: Config, device: torch.device, processes: Processes | None = None
) -> tuple[DataLoader, SeededBatches]:
    """This process's micro-batches in the order of ``SeededBatches`` (``cfg.data.batch_size`` is the global
    batch, split over the processes and ``cfg.optim.accumulate`` steps)."""
    if len(dataset) == 0:
        raise DLAError(f"the training set ({cfg.data.dataset}, split {cfg.data.train_split}) is empty")
    processes = processes or Processes()
    batches = SeededBatches(
        len(dataset), cfg.seed, cfg.data.batch_size, cfg.optim.accumulate, processes.rank, processes.world_size
    )
    loader = DataLoader(
        SeededItems(dataset),
        batch_sampler=batches,
        num_workers=cfg.data.workers,
        pin_memory=device.type == "cuda",
        worker_init_fn=seed_worker,
        generator=torch.Generator().manual_seed(cfg.seed),
    )
    return loader, batches


@contextlib.contextmanager
def _seeded_generators(seed: int) -> Iterator[None]:
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    random.seed(seed)
    np.random.seed(seed)
    # Only the CPU generator, which the transforms draw from: torch.manual_seed would also queue the
    # CUDA/XPU/MTIA seeding, each with a stack capture, about 1 ms a sample.
    torch.default_generator.manual_seed(seed)
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])


def seed_worker(worker_id: int) -> None:
    """Seed a loader process's NumPy and Python generators from its torch seed (itself from the loader's
    generator), for any randomness outside ``SeededItems`` (e.g. in a collate function)."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
