"""Per-pixel likelihood losses: cross-entropy, its online hard example mining (OHEM) and the focal loss, for softmax
logits (``N x C x H x W``, segmentation) and for one sigmoid logit per pixel (``N x 1 x H x W``, boundaries).

Every loss leaves out the pixels labelled ``ignore_index`` and returns a zero connected to the logits (zero
gradients, not NaN) for a batch without a labelled pixel. How a loss is averaged is part of it:

- softmax losses take the mean over the labelled pixels weighted by their class's weight (divided by the summed
  weights of the counted pixels), as ``torch.nn.functional.cross_entropy`` does;
- sigmoid losses weight each pixel by its class's weight (HED's ``(1, 10)``) and divide the sum by the number of
  labelled pixels, as the boundary task has since its first run.

So ``focal_loss`` with ``gamma = 0`` is ``cross_entropy`` and ``binary_focal_loss`` with ``gamma = 0`` is
``binary_cross_entropy``.
"""

import torch
import torch.nn.functional as F
from torch import Tensor

from ..constants import IGNORE_INDEX
from ._dense import ClassWeights, check_dense, full_precision, labelled_pixels, no_loss
from .terms import Count, NonNegative, Probability

# (1 - p_t) is clamped to this before its power is taken: a pixel with p_t = 1 then has a finite (zero) gradient
# for gamma in (0, 1), where the power's own derivative is infinite; its loss is 0 either way (log p_t = 0).
_FOCAL_FLOOR = 1e-12


def cross_entropy(logits: Tensor, target: Tensor, ignore_index: int = IGNORE_INDEX, class_weights: ClassWeights = None) -> Tensor:
    """Per-pixel cross-entropy ``-log p_t`` averaged over the pixels that are not ``ignore_index``.

    Args:
        logits: ``N x C x H x W``; target: ``N x H x W`` int64 class indices or ``ignore_index``.
        class_weights: ``C`` weights; the mean is then weighted (divided by the summed weights of the
            counted pixels), as ``torch.nn.functional.cross_entropy`` does.
    Returns:
        a scalar; for a batch of ignored pixels only, a zero connected to ``logits`` (``no_loss``).
    """
    weight = check_dense(logits, target, class_weights)
    if not bool((target != ignore_index).any()):
        return no_loss(logits)
    weight = None if weight is None else weight.to(logits.dtype)  # F.cross_entropy takes them in the logits' dtype
    return F.cross_entropy(logits, target.long(), weight=weight, ignore_index=ignore_index)


def ohem_cross_entropy(
    logits: Tensor,
    target: Tensor,
    ignore_index: int = IGNORE_INDEX,
    class_weights: ClassWeights = None,
    *,
    thresh: Probability = 0.7,
    min_kept: Count = 100000,
) -> Tensor:
    """Cross-entropy over the hard pixels only: online hard example mining (Shrivastava et al. 2016) as mmseg's
    ``OHEMPixelSampler`` selects pixels, ``thresh`` and ``min_kept`` being its options and defaults.

    A labelled pixel is hard when the predicted probability of its true class is below ``thresh``; when fewer
    than ``min_kept`` per image (``N x min_kept`` in the batch) are, the ``N x min_kept`` pixels of lowest
    probability are kept instead (all the labelled pixels, when there are fewer). The selection is made without
    gradient; the loss is ``cross_entropy`` of the kept pixels (the others count as ignored), so it averages over
    them, with class weights as there. mmseg's own rule differs only at its edges: it keeps the pixels strictly
    below the ``min_kept``-th probability (fewer with ties, one fewer when an image has fewer labelled pixels).
    """
    check_dense(logits, target, class_weights)
    labelled = target != ignore_index
    with torch.no_grad():
        p_true = logits.softmax(dim=1).gather(1, target.long().where(labelled, 0).unsqueeze(1))[:, 0][labelled]
        hardest_first = p_true.argsort(stable=True)
        count = max(int((p_true < thresh).sum()), min(min_kept * logits.shape[0], p_true.numel()))
        kept = torch.zeros_like(p_true, dtype=torch.bool)
        kept[hardest_first[:count]] = True
        hard = torch.zeros_like(labelled)
        hard[labelled] = kept
    return cross_entropy(logits, target.long().masked_fill(~hard, ignore_index), ignore_index, class_weights)


def focal_loss(
    logits: Tensor,
    target: Tensor,
    ignore_index: int = IGNORE_INDEX,
    class_weights: ClassWeights = None,
    *,
    gamma: NonNegative = 2.0,
) -> Tensor:
    """The focal loss ``-(1 - p_t)^gamma log p_t`` (Lin et al. 2017, Eq. 4; with class weights, the ``alpha_t`` of
    Eq. 5) of softmax probabilities, averaged over the labelled pixels as ``cross_entropy`` is: well-classified
    pixels (``p_t`` near 1) are down-weighted, so the rare and hard ones weigh more. ``gamma = 0`` is cross-entropy;
    the paper's best is 2."""
    weight = check_dense(logits, target, class_weights)
    pixels, labels = labelled_pixels(full_precision(logits), target, ignore_index)
    if labels.numel() == 0:
        return no_loss(logits)
    log_p_true = F.log_softmax(pixels, dim=0).gather(0, labels.unsqueeze(0))[0]
    losses = -((1 - log_p_true.exp()).clamp_min(_FOCAL_FLOOR) ** gamma) * log_p_true
    if weight is None:
        return losses.mean()
    return (weight[labels] * losses).sum() / weight[labels].sum()


def binary_cross_entropy(
    logits: Tensor, target: Tensor, ignore_index: int = IGNORE_INDEX, class_weights: ClassWeights = None
) -> Tensor:
    """Binary cross-entropy of ``N x 1 x H x W`` logits against ``N x H x W`` labels (1 foreground, 0 not,
    ``ignore_index`` left out), each pixel weighted by ``class_weights[label]`` (HED's ``(1, 10)``: boundaries
    count ten times), summed and divided by the number of pixels that are not ignored."""
    losses, weights, labelled = _binary_pixel_losses(logits, target, ignore_index, class_weights)
    return (losses * weights * labelled).sum() / labelled.sum().clamp_min(1)


def binary_focal_loss(
    logits: Tensor,
    target: Tensor,
    ignore_index: int = IGNORE_INDEX,
    class_weights: ClassWeights = None,
    *,
    gamma: NonNegative = 2.0,
) -> Tensor:
    """The focal loss of Lin et al. 2017 in its own, sigmoid form (Eq. 4, 5: ``p_t`` is the sigmoid for foreground
    pixels and one minus it for the others; ``alpha_t`` the class weight), reduced as ``binary_cross_entropy``:
    ``gamma = 0`` is that loss."""
    losses, weights, labelled = _binary_pixel_losses(logits, target, ignore_index, class_weights)
    modulation = (1 - torch.exp(-losses)).clamp_min(_FOCAL_FLOOR) ** gamma  # (1 - p_t)^gamma, as -log p_t = BCE
    return (modulation * losses * weights * labelled).sum() / labelled.sum().clamp_min(1)


def _binary_pixel_losses(
    logits: Tensor, target: Tensor, ignore_index: int, class_weights: ClassWeights
) -> tuple[Tensor, Tensor, Tensor]:
    """Each pixel's binary cross-entropy ``-log p_t`` (``N x H x W``), its class weight (1 without weights), and
    whether it is labelled."""
    weight = check_dense(logits, target, class_weights, binary=True)
    labelled = target != ignore_index
    positive = (target == 1) & labelled
    scores = full_precision(logits[:, 0])
    losses = F.binary_cross_entropy_with_logits(scores, positive.to(scores.dtype), reduction="none")
    weights = torch.ones_like(losses) if weight is None else torch.where(positive, weight[1], weight[0]).to(losses.dtype)
    return losses, weights, labelled
