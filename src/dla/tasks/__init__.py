"""Task-level code: losses, evaluation, test-time inference, prediction output and plots, per task."""

from .classification import classification_loss, evaluate_classification, format_scores, top_classes
from .curves import plot_curves
from .segmentation import evaluate_segmentation, infer, predict, save_prediction, segmentation_loss
from .visualize import colorize, draw_confusion_matrix, overlay

__all__ = [
    "classification_loss",
    "colorize",
    "draw_confusion_matrix",
    "evaluate_classification",
    "evaluate_segmentation",
    "format_scores",
    "infer",
    "overlay",
    "plot_curves",
    "predict",
    "save_prediction",
    "segmentation_loss",
    "top_classes",
]
