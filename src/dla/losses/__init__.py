"""The training losses of the dense tasks, their combination as the config names it, and class weights computed
from the training labels.

Each loss is a function ``loss(logits, target, ignore_index=255, class_weights=None, *, options...)`` that leaves
out the pixels labelled ``ignore_index`` and returns a zero with zero gradients for a batch of ignored pixels
only. ``SOFTMAX_LOSSES`` take ``N x C x H x W`` logits (segmentation); ``BINARY_LOSSES`` take one sigmoid logit
per pixel, ``N x 1 x H x W`` (boundaries). A task offers one of the two sets to ``optim.loss``, whose entries
``loss_terms`` checks and ``combined_loss`` sums (``terms``); ``docs/segmentation.md`` ("Losses and class
weights") defines each loss and gives its reference.

===========  ==========================================  ===========================================
name         softmax (segmentation)                      sigmoid (boundaries)
===========  ==========================================  ===========================================
``ce``       ``cross_entropy`` (the default)             --
``bce``      --                                          ``binary_cross_entropy`` (HED's; the default)
``ohem``     ``ohem_cross_entropy``                      --
``focal``    ``focal_loss``                              ``binary_focal_loss``
``dice``     ``dice_loss``                               ``binary_dice_loss``
``lovasz``   ``lovasz_softmax``                          ``lovasz_hinge``
===========  ==========================================  ===========================================
"""

from .class_weights import CLASS_WEIGHTINGS, inverse_log_weights, median_frequency_weights
from .cross_entropy import binary_cross_entropy, binary_focal_loss, cross_entropy, focal_loss, ohem_cross_entropy
from .dice import binary_dice_loss, dice_loss, soft_dice
from .lovasz import lovasz_extension, lovasz_grad, lovasz_hinge, lovasz_softmax
from .terms import LossFunction, LossTerm, combined_loss, loss_options, loss_terms

SOFTMAX_LOSSES: dict[str, LossFunction] = {
    "ce": cross_entropy,
    "ohem": ohem_cross_entropy,
    "focal": focal_loss,
    "dice": dice_loss,
    "lovasz": lovasz_softmax,
}
BINARY_LOSSES: dict[str, LossFunction] = {
    "bce": binary_cross_entropy,
    "focal": binary_focal_loss,
    "dice": binary_dice_loss,
    "lovasz": lovasz_hinge,
}

__all__ = [
    "BINARY_LOSSES",
    "CLASS_WEIGHTINGS",
    "SOFTMAX_LOSSES",
    "LossFunction",
    "LossTerm",
    "binary_cross_entropy",
    "binary_dice_loss",
    "binary_focal_loss",
    "combined_loss",
    "cross_entropy",
    "dice_loss",
    "focal_loss",
    "inverse_log_weights",
    "loss_options",
    "loss_terms",
    "lovasz_extension",
    "lovasz_grad",
    "lovasz_hinge",
    "lovasz_softmax",
    "median_frequency_weights",
    "ohem_cross_entropy",
    "soft_dice",
]
