"""The tasks: one module each (``segmentation``, ``classification``, ``boundaries``) owning its loss, evaluation,
test-time inference, prediction output and pictures, and implementing the engine's ``Task`` contract (``base``).

``TASKS`` is the registry the engine and the config consult: adding a task is adding its module and one entry.
"""

from ..errors import DLAError
from .base import Criterion, Task
from .boundaries import BoundaryTask, boundary_loss, draw_pr_curve, evaluate_boundaries, gradient_magnitude
from .classification import ClassificationTask, classification_loss, evaluate_classification, format_scores, top_classes
from .curves import plot_curves
from .segmentation import SegmentationTask, evaluate_segmentation, infer, predict, save_prediction, segmentation_loss
from .visualize import class_index_image, colorize, draw_confusion_matrix, overlay

TASKS: dict[str, Task] = {task.name: task for task in (SegmentationTask(), ClassificationTask(), BoundaryTask())}


def get_task(name: str) -> Task:
    """The task called ``name`` (a config's ``task``)."""
    try:
        return TASKS[name]
    except KeyError:
        raise DLAError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}") from None


__all__ = [
    "TASKS",
    "BoundaryTask",
    "Criterion",
    "ClassificationTask",
    "SegmentationTask",
    "Task",
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
    "predict",
    "save_prediction",
    "segmentation_loss",
    "top_classes",
]
