"""The Lovász losses (Berman, Rannen Triki, Blaschko 2018): convex surrogates of the Jaccard loss ``1 - IoU``,
its Lovász extension evaluated at the pixels' errors; softmax for several classes, hinge for one sigmoid logit.

The Jaccard loss of class ``c`` as a function of the set ``M`` of mispredicted pixels is
``Delta(M) = |M| / |{y = c} u M|`` (Eq. 2). Its Lovász extension (Eq. 8, 9) at an error vector ``m`` sorted in
decreasing order ``m_pi1 >= m_pi2 >= ...`` is ``sum_i m_pii g_i`` with ``g_i = Delta({pi1..pii}) -
Delta({pi1..pii-1})``; ``lovasz_grad`` computes the ``g_i`` for all ``i`` at once (the paper's Alg. 1).

- ``lovasz_softmax`` (Eq. 12): the errors of class ``c`` are ``|[y = c] - p_c|`` with ``p`` the softmax; the loss
  averages over the classes present in the labels (``classes='present'``, the default of the paper's code),
  with class weights as a weighted mean.
- ``lovasz_hinge`` (Eq. 11, the binary case): the errors are the hinge errors ``1 - s x`` of the logits ``x``
  (``s = +-1`` the sign of the label), rectified.

Both score the whole batch as one image by default (the default of the paper's code for Lovász-softmax; its
hinge defaults to images one by one); ``per_image: true`` averages the loss of each image that has a labelled
pixel instead (the paper's code counts an image without one as a loss of 0). ``ignore_index`` pixels
are left out; a batch without a labelled pixel gives a zero connected to the logits.
"""

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ..constants import IGNORE_INDEX
from ._dense import ClassWeights, check_dense, class_mean, full_precision, labelled_pixels, no_loss, one_hot


def lovasz_grad(truth_sorted: Tensor) -> Tensor:
    """The increments ``g_i`` of the Jaccard loss along errors sorted in decreasing order (Alg. 1), for each row of a
    ``C x M`` (or one ``M``) binary ground truth in that order: ``Delta`` of the first ``i`` pixels taken as
    mispredicted, minus that of the first ``i - 1``."""
    positives = truth_sorted.sum(dim=-1, keepdim=True)
    intersection = positives - truth_sorted.cumsum(dim=-1)
    union = positives + (1 - truth_sorted).cumsum(dim=-1)
    jaccard = 1 - intersection / union
    return torch.cat([jaccard[..., :1], jaccard[..., 1:] - jaccard[..., :-1]], dim=-1)


def lovasz_extension(errors: Tensor, truth: Tensor) -> Tensor:
    """``sum_i m_pii g_i``: the Lovász extension of each row's Jaccard loss at its ``errors`` (``C x M``, or one
    ``M``, with the binary ``truth`` of the same shape)."""
    errors_sorted, order = errors.sort(dim=-1, descending=True)
    return (errors_sorted * lovasz_grad(truth.gather(-1, order))).sum(dim=-1)


def lovasz_softmax(
    logits: Tensor,
    target: Tensor,
    ignore_index: int = IGNORE_INDEX,
    class_weights: ClassWeights = None,
    *,
    per_image: bool = False,
) -> Tensor:
    """Lovász-softmax of ``N x C x H x W`` logits: the mean over the classes present of each class's Lovász
    extension at the errors ``|[y = c] - p_c|``, for the batch (or, with ``per_image``, averaged over images)."""
    weight = check_dense(logits, target, class_weights)

    def loss(pixels: Tensor, labels: Tensor) -> Tensor:
        truth = one_hot(labels, logits.shape[1], pixels.dtype)
        present = truth.sum(dim=1) > 0
        errors = (truth[present] - pixels.softmax(dim=0)[present]).abs()
        return class_mean(lovasz_extension(errors, truth[present]), present, weight)

    return _over_images(loss, full_precision(logits), target, ignore_index, per_image)


def lovasz_hinge(
    logits: Tensor,
    target: Tensor,
    ignore_index: int = IGNORE_INDEX,
    class_weights: ClassWeights = None,
    *,
    per_image: bool = False,
) -> Tensor:
    """The Lovász hinge of ``N x 1 x H x W`` logits against labels 1 (foreground) and 0: the Lovász extension of
    the foreground's Jaccard loss at the rectified hinge errors ``max(0, 1 - s x)``. One class: ``class_weights``
    play no part (checked only)."""
    check_dense(logits, target, class_weights, binary=True)

    def loss(scores: Tensor, labels: Tensor) -> Tensor:
        truth = (labels == 1).to(scores.dtype)
        return lovasz_extension(F.relu(1 - scores[0] * (2 * truth - 1)), truth)

    return _over_images(loss, full_precision(logits), target, ignore_index, per_image)


def _over_images(
    loss: Callable[[Tensor, Tensor], Tensor], logits: Tensor, target: Tensor, ignore_index: int, per_image: bool
) -> Tensor:
    """``loss`` of the labelled pixels (``C x M`` logits, ``M`` labels) of the batch, or its mean over the images
    that have a labelled pixel; a zero connected to ``logits`` when none has."""
    batches = [(logits[i : i + 1], target[i : i + 1]) for i in range(len(logits))] if per_image else [(logits, target)]
    losses = [loss(*pixels) for pixels in (labelled_pixels(x, y, ignore_index) for x, y in batches) if pixels[1].numel()]
    return torch.stack(losses).mean() if losses else no_loss(logits)
