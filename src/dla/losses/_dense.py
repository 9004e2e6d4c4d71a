"""What the dense losses share: checking that logits and labels pair, the labelled pixels of a batch, the zero
that every loss returns for a batch with none, and the class means of Dice and Lovász."""

from collections.abc import Sequence

import torch
from torch import Tensor

from ..errors import DLAError

ClassWeights = Tensor | Sequence[float] | None


def check_dense(logits: Tensor, target: Tensor, class_weights: ClassWeights = None, binary: bool = False) -> Tensor | None:
    """Refuse logits and labels that do not pair (``N x C x H x W`` against ``N x H x W``; ``C = 1`` with ``binary``);
    return the class weights as a tensor on the logits' device in the precision the loss is computed in
    (``full_precision``), None staying None, checked to be one per class (two for a binary loss: background,
    foreground)."""
    channels = "1" if binary else "C"
    if logits.dim() != 4 or (binary and logits.shape[1] != 1) or target.shape != logits.shape[:1] + logits.shape[2:]:
        raise DLAError(
            f"expected logits N x {channels} x H x W and target N x H x W, got {tuple(logits.shape)} and {tuple(target.shape)}"
        )
    if class_weights is None:
        return None
    weight = torch.as_tensor(class_weights, dtype=full_precision(logits).dtype, device=logits.device)
    classes = 2 if binary else logits.shape[1]
    if weight.shape != (classes,):
        raise DLAError(f"class_weights has {weight.numel()} values for {classes} classes")
    return weight


def full_precision(logits: Tensor) -> Tensor:
    """Half-precision logits (autocast's bf16 or fp16) as float32, for the softmax, powers and sums of a loss;
    float32 and float64 as they are (float64 is what ``gradcheck`` checks in)."""
    return logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits


def labelled_pixels(logits: Tensor, target: Tensor, ignore_index: int) -> tuple[Tensor, Tensor]:
    """The logits and labels of the ``M`` pixels whose label is not ``ignore_index``: ``C x M`` (class-major, so that
    the per-class sorts and sums of Dice and Lovász run along contiguous rows) and ``M``."""
    labelled = target != ignore_index
    return logits.transpose(0, 1).reshape(logits.shape[1], -1)[:, labelled.flatten()], target[labelled].long()


def one_hot(labels: Tensor, classes: int, dtype: torch.dtype) -> Tensor:
    """``classes x M`` indicators of ``M`` labels: row ``c`` is 1 where the label is ``c``."""
    return (labels == torch.arange(classes, device=labels.device).unsqueeze(1)).to(dtype)


def no_loss(logits: Tensor) -> Tensor:
    """A zero connected to ``logits``: what a loss of a batch without a labelled pixel (a crop of pure void) returns,
    so that ``backward()`` works and gives zero gradients, where a mean over no pixels would be NaN."""
    return logits.sum() * 0.0


def class_mean(values: Tensor, present: Tensor, weight: Tensor | None) -> Tensor:
    """The mean of the ``values`` of the ``present`` classes (one value each, in class order; ``present`` is the
    ``C`` mask of them), weighted by their entries of the ``C`` class weights ``weight`` when given."""
    if weight is None:
        return values.mean()
    return (weight[present] * values).sum() / weight[present].sum()
