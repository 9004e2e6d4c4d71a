"""Synthetic shapes: deterministic per (seed, split, index), varied, all classes, not solvable by colour."""

import numpy as np
import pytest
import torch

from dla.data import SyntheticShapes
from dla.errors import DLAError


def arrays(dataset, index):
    image, label = dataset.read(index)
    return np.asarray(image), label


def test_deterministic_per_index_and_independent_of_global_rngs():
    first = SyntheticShapes(split="train", length=10)
    reference = [arrays(first, i) for i in (7, 2)]
    np.random.seed(99)
    torch.manual_seed(99)
    second = SyntheticShapes(split="train", length=10)
    for (image, label), index in zip(reference, (7, 2), strict=True):  # another instance, another order, other global seeds
        again_image, again_label = arrays(second, index)
        np.testing.assert_array_equal(again_image, image)
        np.testing.assert_array_equal(again_label, label)
    np.testing.assert_array_equal(arrays(first, -1)[1], arrays(first, 9)[1])


def test_samples_differ_across_indices_splits_and_seeds():
    train, val = SyntheticShapes(split="train"), SyntheticShapes(split="val")
    other_seed = SyntheticShapes(split="train", seed=1)
    labels = [arrays(train, i)[1] for i in range(8)]
    assert all(not np.array_equal(labels[i], labels[j]) for i in range(8) for j in range(i))
    images = {arrays(train, i)[0].tobytes() for i in range(8)}
    assert not images & {arrays(val, i)[0].tobytes() for i in range(8)}
    assert not images & {arrays(other_seed, i)[0].tobytes() for i in range(8)}


def test_contract_and_sizes():
    dataset = SyntheticShapes(split="val", height=48, width=80)
    assert (len(SyntheticShapes()), len(dataset), len(SyntheticShapes(length=5))) == (512, 64, 5)
    assert dataset.meta.num_classes == 6 and dataset.meta.classes[0] == "background"
    image, label = dataset[0]
    assert image.mode == "RGB" and image.size == (80, 48)
    assert label.shape == (48, 80) and label.dtype == np.int64
    with pytest.raises(IndexError):
        dataset.read(64)


def test_all_classes_appear_and_colour_alone_is_not_enough():
    dataset = SyntheticShapes(split="train")
    pixels, labels = zip(*(arrays(dataset, i) for i in range(50)), strict=True)
    pixels = np.concatenate([p.reshape(-1, 3) for p in pixels]).astype(np.float32)
    labels = np.concatenate([label.ravel() for label in labels])
    counts = np.bincount(labels, minlength=6)
    assert len(counts) == 6 and (counts > 0).all()
    assert 0.4 < counts[0] / counts.sum() < 0.95  # background dominates but is not everything
    # A nearest-mean-colour classifier on foreground pixels should do far from perfectly.
    means = np.stack([pixels[labels == c].mean(0) for c in range(6)])
    foreground = labels > 0
    predicted = np.argmin(((pixels[foreground, None] - means) ** 2).sum(-1), axis=1)
    assert (predicted == labels[foreground]).mean() < 0.8


def test_generates_many_samples_quickly():
    dataset = SyntheticShapes(split="train", length=64)
    shapes_per_image = [len(np.unique(dataset.read(i)[1])) for i in range(64)]
    assert min(shapes_per_image) >= 2  # background and at least one shape


def test_bad_arguments():
    with pytest.raises(DLAError, match="seed"):
        SyntheticShapes(seed=-1)
    with pytest.raises(DLAError, match="height"):
        SyntheticShapes(height=4)
    with pytest.raises(DLAError, match="valid splits"):
        SyntheticShapes(split="holdout")
