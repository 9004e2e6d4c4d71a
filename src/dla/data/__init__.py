"""Datasets, joint transforms and synthetic data for dense prediction.

Datasets (one per on-disk layout, all :class:`SegmentationDataset`) give ``(RGB PIL image, int64 (H, W)
label)`` pairs, or what their ``transform`` makes of them (:func:`train_transforms` /
:func:`eval_transforms`: ``float32 (3, H, W)`` and ``int64 (H, W)`` tensors). :func:`build_dataset`
makes one by name, for configuration files and the command line.
"""

import inspect
from typing import Dict, Optional, Type

from ..errors import DLAError
from .base import IMAGE_EXTENSIONS, SegmentationDataset, load_image, load_label
from .camvid import CAMVID_META, CamVid
from .cityscapes import CITYSCAPES_META, Cityscapes, label_ids_to_train_ids, prepare_cityscapes
from .folder import FolderDataset
from .listfile import ListFileDataset
from .meta import DatasetMeta, default_palette
from .synthetic import SYNTHETIC_META, SyntheticShapes, generate_shapes
from .transforms import (
    ColorJitter,
    Compose,
    RandomCrop,
    RandomHorizontalFlip,
    RandomRotate,
    RandomScale,
    ToTensorNormalize,
    eval_transforms,
    train_transforms,
)
from .voc import VOC_META, VOCSegmentation

DATASETS: Dict[str, Type[SegmentationDataset]] = {
    "camvid": CamVid,
    "cityscapes": Cityscapes,
    "voc": VOCSegmentation,
    "listfile": ListFileDataset,
    "folder": FolderDataset,
    "synthetic": SyntheticShapes,
}


def dataset_options(name: str) -> Dict[str, inspect.Parameter]:
    """The layout-specific keyword options of dataset ``name`` (everything but root, split and transform)."""
    parameters = inspect.signature(_dataset_class(name).__init__).parameters
    return {k: p for k, p in parameters.items() if k not in ("self", "root", "split", "transform")}


def _dataset_class(name: str) -> Type[SegmentationDataset]:
    try:
        return DATASETS[name]
    except KeyError:
        raise DLAError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}") from None


def build_dataset(name: str, root: Optional[str], split: str, transform=None, **options) -> SegmentationDataset:
    """Dataset ``name`` (a key of :data:`DATASETS`) on ``root``'s ``split``, with its layout ``options``.

    ``root`` may be ``None`` only for ``synthetic``. Unknown names and options raise :class:`DLAError`
    listing what is accepted.
    """
    cls = _dataset_class(name)
    accepted = dataset_options(name)
    unexpected = sorted(set(options) - set(accepted))
    if unexpected:
        raise DLAError(
            f"dataset {name!r} does not take option(s) {', '.join(unexpected)}; "
            f"it accepts: {', '.join(accepted) or 'no options'}"
        )
    if root is None and cls.needs_root:
        raise DLAError(f"dataset {name!r} needs a root folder")
    return cls(root, split, transform, **options)


__all__ = [
    "CAMVID_META",
    "CITYSCAPES_META",
    "DATASETS",
    "IMAGE_EXTENSIONS",
    "SYNTHETIC_META",
    "VOC_META",
    "CamVid",
    "Cityscapes",
    "ColorJitter",
    "Compose",
    "DatasetMeta",
    "FolderDataset",
    "ListFileDataset",
    "RandomCrop",
    "RandomHorizontalFlip",
    "RandomRotate",
    "RandomScale",
    "SegmentationDataset",
    "SyntheticShapes",
    "ToTensorNormalize",
    "VOCSegmentation",
    "build_dataset",
    "dataset_options",
    "default_palette",
    "eval_transforms",
    "generate_shapes",
    "label_ids_to_train_ids",
    "load_image",
    "load_label",
    "prepare_cityscapes",
    "train_transforms",
]
