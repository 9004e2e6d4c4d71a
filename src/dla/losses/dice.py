"""The soft Dice loss of V-Net (Milletari, Navab, Ahmadi 2016, Eq. 1), for softmax logits (one Dice per class,
averaged) and for one sigmoid logit per pixel (the foreground's Dice, the paper's own binary case).

The paper's Dice of predicted probabilities ``p_i`` and a binary ground truth ``g_i`` over the pixels ``i``::

    D = 2 sum_i p_i g_i / (sum_i p_i^2 + sum_i g_i^2)

with the squares in the denominator, as the paper writes it. Sums run over every labelled pixel of the batch
(one Dice per class for the batch, not per image); ``ignore_index`` pixels are left out. The loss is ``1 - D``,
averaged over the classes *present* in the batch's labels: a class with no labelled pixel has ``D = 0`` whatever
is predicted (nothing to overlap), a constant that would only shift the loss; it is left out, as Lovász-softmax
leaves out absent classes. A batch with no class present (every pixel ignored, or a binary batch without a
foreground pixel) gives a zero connected to the logits.
"""

from torch import Tensor

from ..constants import IGNORE_INDEX
from ._dense import ClassWeights, check_dense, class_mean, full_precision, labelled_pixels, no_loss, one_hot


def soft_dice(probabilities: Tensor, truth: Tensor) -> Tensor:
    """Eq. 1 of V-Net for each row of ``C x M`` probabilities against a ``C x M`` binary ground truth: ``C`` values
    (NaN for a row where both are all zero)."""
    overlap = (probabilities * truth).sum(dim=1)
    return 2 * overlap / ((probabilities**2).sum(dim=1) + (truth**2).sum(dim=1))


def dice_loss(logits: Tensor, target: Tensor, ignore_index: int = IGNORE_INDEX, class_weights: ClassWeights = None) -> Tensor:
    """``1 - D`` of the softmax probabilities of ``N x C x H x W`` logits, one ``D`` per class over the batch's
    labelled pixels, averaged over the classes present in ``target`` (weighted by ``class_weights`` when given)."""
    weight = check_dense(logits, target, class_weights)
    pixels, labels = labelled_pixels(full_precision(logits), target, ignore_index)
    truth = one_hot(labels, logits.shape[1], pixels.dtype)
    present = truth.sum(dim=1) > 0
    if not bool(present.any()):
        return no_loss(logits)
    # only the present rows: an absent class's 0 / sum p^2 would be 0 / 0 where p underflows, and NaN gradients
    return 1 - class_mean(soft_dice(pixels.softmax(dim=0)[present], truth[present]), present, weight)


def binary_dice_loss(
    logits: Tensor, target: Tensor, ignore_index: int = IGNORE_INDEX, class_weights: ClassWeights = None
) -> Tensor:
    """``1 - D`` of the foreground (label 1) of ``N x 1 x H x W`` sigmoid logits over the batch's labelled pixels,
    V-Net's binary case; a batch without a foreground pixel gives a zero. One class: ``class_weights`` play no
    part (checked only)."""
    check_dense(logits, target, class_weights, binary=True)
    scores, labels = labelled_pixels(full_precision(logits), target, ignore_index)
    truth = (labels == 1).to(scores.dtype).unsqueeze(0)
    if not bool(truth.any()):
        return no_loss(logits)
    return 1 - soft_dice(scores.sigmoid(), truth)[0]
