"""Evaluation metrics: pure functions and accumulators that sum across batches and processes.

Nothing here imports models or data loaders; only ``dla.data.meta.DatasetMeta`` is shared.
"""

from .boundaries import (
    BoundaryBenchmark,
    boundary_scores,
    boundary_thresholds,
    f_measure,
    image_counts,
    match_edges,
    thin_binary,
    thin_edges,
)
from .classification import AccuracyMeter, topk_accuracy
from .segmentation import ConfusionMatrix, confusion_matrix, format_table, segmentation_scores

__all__ = [
    "AccuracyMeter",
    "BoundaryBenchmark",
    "ConfusionMatrix",
    "boundary_scores",
    "boundary_thresholds",
    "confusion_matrix",
    "f_measure",
    "format_table",
    "image_counts",
    "match_edges",
    "segmentation_scores",
    "thin_binary",
    "thin_edges",
    "topk_accuracy",
]
