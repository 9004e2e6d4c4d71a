"""Datasets, transforms and synthetic data for dense prediction and image classification.

Segmentation datasets (one per on-disk layout, all :class:`SegmentationDataset`) give ``(RGB PIL image,
int64 (H, W) label)`` pairs, or what their ``transform`` makes of them (:func:`train_transforms` /
:func:`eval_transforms`: ``float32 (3, H, W)`` and ``int64 (H, W)`` tensors). Classification datasets
(all :class:`ClassificationDataset`: :class:`ImageFolder` and the fine-grained :class:`CUB200`,
:class:`StanfordCars`, :class:`FGVCAircraft`, :class:`Food101`) give ``(RGB PIL image, int label)``
pairs, their ``transform`` applied to the image alone (:func:`classification_train_transforms` /
:func:`classification_eval_transforms`: ``float32 (3, h, w)``, or ``(10, 3, h, w)`` for 10 crops). Each
kind says which it is in ``task``. Both recipes are built from one stack of transforms
(:mod:`dla.data.transforms`) that take an image and, optionally, its mask.
:class:`BSDS500` and :class:`BoundaryFolder` are boundary-detection datasets (:class:`BoundaryDataset`,
``task = "boundaries"``): two-class segmentation samples (label 1 = boundary, 255 ignored) whose label is
the consensus of the annotators, and ``annotations(i)``, every annotator's boolean map for evaluation.
:func:`build_dataset` makes any of them by name, for configuration files and the command line.
Every dataset's ``verify()`` checks all the files of its split from their headers (they open, in a mode
the readers handle, labels of their image's size) and names the bad ones, before training reads them.
"""

import inspect

from ..errors import DLAError
from .base import IMAGE_EXTENSIONS, ClassificationDataset, SegmentationDataset, TaskDataset, load_image, load_label
from .boundaries import BoundaryDataset, BoundaryFolder, boundaries_from_segmentation, consensus_label
from .bsds import BSDS500, BSDS_META
from .camvid import CAMVID_META, CamVid
from .cityscapes import CITYSCAPES_META, Cityscapes, label_ids_to_train_ids, prepare_cityscapes
from .classification_transforms import classification_eval_transforms, classification_train_transforms
from .finegrained import CUB200, FGVCAircraft, Food101, StanfordCars
from .folder import FolderDataset
from .imagefolder import ImageFolder
from .listfile import ListFileDataset
from .meta import DatasetMeta, default_palette
from .statistics import LabelCounts, count_labels
from .synthetic import SYNTHETIC_META, SyntheticShapes, generate_shapes
from .transforms import (
    CenterCrop,
    ColorJitter,
    Compose,
    Lighting,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    RandomResizedCrop,
    RandomRotate,
    RandomScale,
    Resize,
    TenCrop,
    ToTensor,
    Transform,
    eval_transforms,
    train_transforms,
)
from .voc import VOC_META, VOCSegmentation

Dataset = SegmentationDataset | ClassificationDataset

DATASETS: dict[str, type[Dataset]] = {
    "camvid": CamVid,
    "cityscapes": Cityscapes,
    "voc": VOCSegmentation,
    "listfile": ListFileDataset,
    "folder": FolderDataset,
    "synthetic": SyntheticShapes,
    "imagefolder": ImageFolder,
    "cub200": CUB200,
    "stanford_cars": StanfordCars,
    "fgvc_aircraft": FGVCAircraft,
    "food101": Food101,
    "bsds500": BSDS500,
    "boundary_folder": BoundaryFolder,
}


def dataset_options(name: str) -> dict[str, inspect.Parameter]:
    """The layout-specific keyword options of dataset ``name`` (everything but root, split and transform)."""
    parameters = inspect.signature(_dataset_class(name).__init__).parameters
    return {k: p for k, p in parameters.items() if k not in ("self", "root", "split", "transform")}


def _dataset_class(name: str) -> type[Dataset]:
    try:
        return DATASETS[name]
    except KeyError:
        raise DLAError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}") from None


def build_dataset(name: str, root: str | None, split: str, transform=None, **options) -> Dataset:
    """Dataset ``name`` (a key of :data:`DATASETS`) on ``root``'s ``split``, with its layout ``options``.

    ``root`` may be ``None`` only for ``synthetic``. Unknown names and options raise :class:`DLAError`
    listing what is accepted.
    """
    cls = _dataset_class(name)
    accepted = dataset_options(name)
    unexpected = sorted(set(options) - set(accepted))
    if unexpected:
        raise DLAError(
            f"dataset {name!r} does not take option(s) {', '.join(unexpected)}; it accepts: {', '.join(accepted) or 'no options'}"
        )
    if root is None and cls.needs_root:
        raise DLAError(f"dataset {name!r} needs a root folder")
    return cls(root, split, transform, **options)


__all__ = [
    "BSDS_META",
    "CAMVID_META",
    "CITYSCAPES_META",
    "DATASETS",
    "IMAGE_EXTENSIONS",
    "LabelCounts",
    "SYNTHETIC_META",
    "VOC_META",
    "BSDS500",
    "BoundaryDataset",
    "BoundaryFolder",
    "CUB200",
    "CenterCrop",
    "CamVid",
    "Cityscapes",
    "ClassificationDataset",
    "ColorJitter",
    "Compose",
    "DatasetMeta",
    "FGVCAircraft",
    "FolderDataset",
    "Food101",
    "ImageFolder",
    "Lighting",
    "ListFileDataset",
    "Normalize",
    "RandomCrop",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
    "RandomRotate",
    "RandomScale",
    "Resize",
    "SegmentationDataset",
    "TaskDataset",
    "StanfordCars",
    "SyntheticShapes",
    "TenCrop",
    "ToTensor",
    "Transform",
    "VOCSegmentation",
    "boundaries_from_segmentation",
    "build_dataset",
    "count_labels",
    "classification_eval_transforms",
    "classification_train_transforms",
    "consensus_label",
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
