"""``dla browse``: a grid of training samples as the model will see them, with their labels drawn on them (what
mmseg's ``browse_dataset`` does), to check the augmentation before training for hours.

The samples are the first ``n`` of the first epoch's order, each augmented by the task's training transform with
its own seed (``epoch_order``, ``SeededItems``): the picture shows what the first iterations of ``dla train`` with
the same config train on. Images are shown un-normalised (``meta.mean`` and ``meta.std`` undone); the task draws
the labels (``Task.draw_samples``).
"""

from pathlib import Path

from torch import Tensor

from ..config import Config
from ..data import build_dataset
from ..data.meta import DatasetMeta
from ..engine.datasets import check_dataset_task
from ..engine.sampling import SeededItems, epoch_order
from ..errors import DLAError
from ..tasks import get_task
from ..tasks.base import Sample, Task
from ..tasks.visualize import unnormalize

DEFAULT_SAMPLES = 16


def browse(cfg: Config, split: str | None = None, n: int = DEFAULT_SAMPLES, out: str | Path | None = None) -> Path:
    """Draw the first ``n`` augmented samples of ``split`` (default ``cfg.data.train_split``) into ``out``
    (default ``browse_<dataset>_<split>.png``); returns its path."""
    task = get_task(cfg.task)
    split = split or cfg.data.train_split
    samples, meta = training_samples(cfg, task, split, n)
    path = Path(out) if out is not None else Path(f"browse_{cfg.data.dataset}_{split}.png")
    path.parent.mkdir(parents=True, exist_ok=True)
    task.draw_samples(samples, meta).save(path, format="PNG")
    return path


def training_samples(cfg: Config, task: Task, split: str, n: int) -> tuple[list[Sample], DatasetMeta]:
    """The first ``n`` samples of ``split`` in the first epoch's order, augmented by ``task``'s training transform
    as ``dla train`` augments them, images un-normalised; and the dataset's meta."""
    if n < 1:
        raise DLAError(f"--n must be at least 1, got {n}")
    data = cfg.data
    dataset = build_dataset(data.dataset, data.root, split, **data.split_options(split))
    check_dataset_task(dataset, task.name, data.dataset)
    if len(dataset) == 0:
        raise DLAError(f"split {split!r} of {data.dataset} has no samples")
    meta = dataset.meta
    dataset.transform = task.train_transform(cfg, meta)
    items, samples = SeededItems(dataset), []
    for index, item_seed in epoch_order(len(dataset), cfg.seed, 0)[:n]:
        image, target = items[(index, item_seed)]
        target = target.numpy() if isinstance(target, Tensor) and target.dim() else int(target)
        samples.append(Sample(f"#{index}", unnormalize(image, meta.mean, meta.std), target))
    return samples, meta
