"""The datasets of a run: the config's splits with the task's transforms, checked to be made for the task."""

from ..config import Config
from ..data import TaskDataset, build_dataset
from ..errors import DLAError
from ..tasks import Task


def build_datasets(cfg: Config, task: Task) -> tuple[TaskDataset, TaskDataset]:
    """The training split with the task's augmentation of ``cfg.data``, the validation split with its
    evaluation transform (dense tasks: whole images; classification: resize and centre crop).

    Every file of both splits is checked from its header first (``TaskDataset.verify``: it opens, its mode is
    read, a label is its image's size), so that a bad validation label is found before the first epoch, not
    after it."""
    data = cfg.data
    train_set = build_dataset(data.dataset, data.root, data.train_split, **data.split_options(data.train_split))
    check_dataset_task(train_set, task.name, data.dataset)
    val_set = build_dataset(data.dataset, data.root, data.val_split, **data.split_options(data.val_split))
    train_set.verify()
    val_set.verify()
    meta = train_set.meta  # both splits are normalised as the model will be trained
    train_set.transform = task.train_transform(cfg, meta)
    val_set.transform = task.eval_transform(cfg, meta)
    return train_set, val_set


def check_dataset_task(dataset: TaskDataset, task: str, name: str) -> None:
    """Refuse a dataset made for another task (a segmentation set for classification, ...)."""
    if dataset.task != task:
        raise DLAError(
            f"dataset {name!r} is a {dataset.task} dataset but the task is {task}; set data.dataset to a {task} dataset"
        )
