"""The class weights of a run: ``optim.class_weights`` as listed, or computed once from the training labels.

``median_freq`` and ``inverse_log`` (``dla.losses.CLASS_WEIGHTINGS``) are computed from the pixel counts of the
training split's labels (``dla.data.count_labels``: label files only) when a run starts, printed, written to the
run's ``class_weights.json`` and kept in its checkpoints. A resumed run reads them back from its checkpoint and
never counts again: the weights it continues with are those it started with, even when its data folder moved.
Under several processes each counts the same labels and so computes the same weights; rank 0 writes them.
"""

from typing import Any

import numpy as np

from ..data import TaskDataset, count_labels
from ..losses import CLASS_WEIGHTINGS

Weighting = dict[str, Any]  # method, classes, weights, pixels, image_pixels, images: what class_weights.json holds


def compute_weighting(method: str, train_set: TaskDataset) -> Weighting:
    """The class weights ``method`` gives for the labels of ``train_set``, with the counts they come from."""
    counts = count_labels(train_set)
    weights = CLASS_WEIGHTINGS[method](counts.pixels.astype(np.float64), counts.image_pixels.astype(np.float64))
    return {
        "method": method,
        "classes": list(train_set.meta.classes),
        "weights": [float(w) for w in weights],
        "pixels": counts.pixels.tolist(),
        "image_pixels": counts.image_pixels.tolist(),
        "images": counts.images,
    }


def run_class_weights(
    setting: list[float] | str | None, train_set: TaskDataset, checkpoint: dict[str, Any] | None
) -> tuple[list[float] | None, Weighting | None]:
    """The class weights of a run whose ``optim.class_weights`` is ``setting`` (None: unweighted) and, for a method's
    name, the record of their computation: read back from the checkpoint the run resumes from, or computed."""
    if not isinstance(setting, str):
        return setting, None
    weighting = checkpoint["class_weights"] if checkpoint is not None else compute_weighting(setting, train_set)
    return weighting["weights"], weighting


def describe_weighting(weighting: Weighting) -> str:
    """``class weights (median_freq, from 367 training labels): Sky 0.226, Building 0.171, ...``, as printed."""
    pairs = ", ".join(f"{name} {weight:.3g}" for name, weight in zip(weighting["classes"], weighting["weights"], strict=True))
    return f"class weights ({weighting['method']}, from {weighting['images']} training labels): {pairs}"
