"""Task-level code: losses, evaluation, test-time inference, prediction output and plots, per task."""

from .boundaries import boundary_loss, draw_pr_curve, evaluate_boundaries, gradient_magnitude
from .classification import classification_loss, evaluate_classification, format_scores, top_classes
from .curves import plot_curves
from .segmentation import evaluate_segmentation, infer, predict, save_prediction, segmentation_loss
from .visualize import colorize, draw_confusion_matrix, overlay

__all__ = [
    "boundary_loss",
    "classification_loss",
    "colorize",
    "draw_confusion_matrix",
    "draw_pr_curve",
    "evaluate_boundaries",
    "evaluate_classification",
    "evaluate_segmentation",
    "format_scores",
    "gradient_magnitude",
    "infer",
    "overlay",
    "plot_curves",
    "predict",
    "save_prediction",
    "segmentation_loss",
    "top_classes",
]
