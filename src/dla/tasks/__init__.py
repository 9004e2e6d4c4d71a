"""The tasks: one module each (``segmentation``, ``classification``, ``boundaries``) owning its loss, evaluation,
test-time inference, prediction output and pictures, and implementing the ``Task`` contract (``base``); what the
dense tasks share is ``dense``.

``TASKS`` is the registry the engine, the commands and the config consult: adding a task is adding its module and
one entry.
"""

import warnings
from typing import Any

from ..errors import DLAError
from .base import PREDICT_DEFAULTS, Criterion, Output, PredictOptions, Sample, Task, View
from .boundaries import BoundaryTask, boundary_loss, draw_pr_curve, evaluate_boundaries, gradient_magnitude
from .classification import ClassificationTask, classification_loss, evaluate_classification, format_scores, top_classes
from .curves import plot_curves
from .segmentation import SegmentationTask, evaluate_segmentation, infer, save_prediction, segment_image, segmentation_loss
from .visualize import class_index_image, colorize, draw_confusion_matrix, overlay

TASKS: dict[str, Task] = {task.name: task for task in (SegmentationTask(), ClassificationTask(), BoundaryTask())}


def get_task(name: str) -> Task:
    """The task called ``name`` (a config's ``task``); a DLAError listing the known ones otherwise."""
    try:
        return TASKS[name]
    except KeyError:
        raise DLAError(f"task must be one of {', '.join(repr(known) for known in TASKS)}, got {name!r}") from None


def __getattr__(name: str) -> Any:
    """``predict``, segmentation's one-image function, now ``segment_image``: one release with a warning."""
    if name == "predict":
        warnings.warn("dla.tasks.predict is now dla.tasks.segment_image", DeprecationWarning, stacklevel=2)
        return segment_image
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "PREDICT_DEFAULTS",
    "TASKS",
    "BoundaryTask",
    "Criterion",
    "ClassificationTask",
    "Output",
    "PredictOptions",
    "Sample",
    "SegmentationTask",
    "Task",
    "View",
    "boundary_loss",
    "classification_loss",
    "class_index_image",
    "colorize",
    "draw_confusion_matrix",
    "draw_pr_curve",
    "evaluate_boundaries",
    "evaluate_classification",
    "evaluate_segmentation",
    "format_scores",
    "get_task",
    "gradient_magnitude",
    "infer",
    "overlay",
    "plot_curves",
    "save_prediction",
    "segment_image",
    "segmentation_loss",
    "top_classes",
]
