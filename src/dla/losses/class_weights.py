"""Class weights from the training labels' pixel counts, for ``optim.class_weights: median_freq`` or ``inverse_log``:
rare classes (CamVid's poles and signs) weigh more in the loss, so that they are learned.

Both take the per-class counts of labelled pixels of the training split (``dla.data.count_labels``); ignored
pixels count nowhere. A class with no pixel in the training labels gets the weight 0: it is never a target, so
its weight changes nothing, and 0 says so in the run's ``class_weights.json``.
"""

from collections.abc import Callable

import numpy as np

from ..errors import DLAError


def median_frequency_weights(pixels: np.ndarray, image_pixels: np.ndarray) -> np.ndarray:
    """Median frequency balancing (Eigen & Fergus 2015, "Predicting depth, surface normals and semantic labels"):
    ``alpha_c = median_freq / freq(c)``, where ``freq(c)`` is the number of pixels of class ``c`` divided by the
    number of (labelled) pixels of the images in which ``c`` is present, and ``median_freq`` the median of these
    frequencies over the classes present. ``pixels``, ``image_pixels``: per class."""
    present = _present(pixels)
    frequency = pixels[present] / image_pixels[present]
    weights = np.zeros(len(pixels))
    weights[present] = np.median(frequency) / frequency
    return weights


def inverse_log_weights(pixels: np.ndarray, image_pixels: np.ndarray | None = None, c: float = 1.02) -> np.ndarray:
    """ENet's weighting (Paszke et al. 2016): ``w_class = 1 / ln(c + p_class)``, ``p_class`` the class's share of
    all labelled training pixels and ``c = 1.02``, which keeps the weights of the classes present between
    1 / ln 2.02 = 1.42 and 1 / ln 1.02 = 50.5.
    (``image_pixels`` is not used; it makes the signature that of ``median_frequency_weights``.)"""
    present = _present(pixels)
    weights = np.zeros(len(pixels))
    weights[present] = 1 / np.log(c + pixels[present] / pixels.sum())
    return weights


CLASS_WEIGHTINGS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "median_freq": median_frequency_weights,
    "inverse_log": inverse_log_weights,
}


def _present(pixels: np.ndarray) -> np.ndarray:
    present = np.asarray(pixels) > 0
    if not present.any():
        raise DLAError("the training labels hold no labelled pixel (every pixel is ignored): no class weights to compute")
    return present
