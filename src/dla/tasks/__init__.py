"""Task-level code: losses, test-time inference, prediction output and training plots."""

from .curves import plot_curves
from .segmentation import infer, predict, save_prediction, segmentation_loss
from .visualize import colorize, overlay

__all__ = ["colorize", "infer", "overlay", "plot_curves", "predict", "save_prediction", "segmentation_loss"]
