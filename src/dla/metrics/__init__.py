"""Evaluation metrics: pure functions and accumulators that sum across batches and processes.

Nothing here imports models or data loaders; only ``dla.data.meta.DatasetMeta`` is shared.
"""

from .classification import AccuracyMeter, topk_accuracy
from .segmentation import ConfusionMatrix, confusion_matrix, format_table, segmentation_scores

__all__ = [
    "AccuracyMeter",
    "ConfusionMatrix",
    "confusion_matrix",
    "format_table",
    "segmentation_scores",
    "topk_accuracy",
]
