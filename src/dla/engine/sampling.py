"""Reproducible data: the order of an epoch and the augmentation of every sample come from ``(seed, epoch)`` alone.

Each item is loaded with Python's, NumPy's and torch's global generators seeded for it (``SeededItems``), in an
order drawn from ``(seed, epoch)`` (``SeededOrder``). So the same config gives the same batches whatever
``data.workers`` is, and a run can restart at any iteration and see the batches it would have seen.
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
from ..errors import DLAError


class SeededOrder(Sampler):
    """The order of an epoch's samples, each with the seed of its augmentation; both from ``(seed, epoch)``.

    Yields ``(index, item_seed)`` pairs, which ``SeededItems`` understands. ``set_epoch(epoch, skip)``
    selects the epoch and leaves out its first ``skip`` samples (to resume mid-epoch).
    """

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.seed, self.epoch, self.skip = size, seed, 0, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch_seed = int(np.random.SeedSequence([self.seed, self.epoch]).generate_state(1)[0])
        generator = torch.Generator().manual_seed(epoch_seed)
        indices = torch.randperm(self.size, generator=generator).tolist()
        item_seeds = torch.randint(2**31, (self.size,), generator=generator).tolist()
        return iter(list(zip(indices, item_seeds, strict=True))[self.skip :])

    def __len__(self) -> int:
        return self.size - self.skip


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


def make_train_loader(dataset: TaskDataset, cfg: Config, device: torch.device) -> tuple[DataLoader, SeededOrder]:
    """Shuffled batches in the order of ``SeededOrder``; the last partial batch is dropped when there are
    several batches (BatchNorm dislikes a batch of one), kept when the whole set fits in one batch."""
    batch_size = cfg.data.batch_size
    if len(dataset) == 0:
        raise DLAError(f"the training set ({cfg.data.dataset}, split {cfg.data.train_split}) is empty")
    order = SeededOrder(len(dataset), cfg.seed)
    loader = DataLoader(
        SeededItems(dataset),
        batch_size=batch_size,
        sampler=order,
        num_workers=cfg.data.workers,
        drop_last=len(dataset) > batch_size,
        pin_memory=device.type == "cuda",
        worker_init_fn=seed_worker,
        generator=torch.Generator().manual_seed(cfg.seed),
    )
    return loader, order


@contextlib.contextmanager
def _seeded_generators(seed: int) -> Iterator[None]:
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
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
