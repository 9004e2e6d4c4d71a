"""Statistics of a segmentation split's labels, read from the label files alone (no image decoded): the pixel
counts from which class-balanced loss weights are computed (``dla.losses.class_weights``)."""

from dataclasses import dataclass

import numpy as np

from ..errors import DLAError
from .base import SegmentationDataset, TaskDataset


@dataclass(frozen=True)
class LabelCounts:
    """Per class (``C`` int64 each): ``pixels``, its labelled pixels; ``image_pixels``, the labelled pixels of the
    images in which it is present (Eigen & Fergus' denominator). ``images``: the labels counted."""

    pixels: np.ndarray
    image_pixels: np.ndarray
    images: int


def count_labels(dataset: TaskDataset) -> LabelCounts:
    """Count the class indices of every label of ``dataset`` (``read_label``, untransformed; ``ignore_index``
    pixels left out) with ``numpy.bincount``."""
    if not isinstance(dataset, SegmentationDataset):
        raise DLAError(
            f"class weights computed from the labels need a dataset whose labels can be read alone (a SegmentationDataset "
            f"with read_label), not {type(dataset).__name__}; give optim.class_weights as a list instead"
        )
    classes = dataset.meta.num_classes
    pixels, image_pixels = np.zeros(classes, np.int64), np.zeros(classes, np.int64)
    for index in range(len(dataset)):
        label = dataset.read_label(index)
        counts = np.bincount(label[label != dataset.meta.ignore_index].ravel(), minlength=classes)
        pixels += counts
        image_pixels[counts > 0] += counts.sum()
    return LabelCounts(pixels, image_pixels, len(dataset))
