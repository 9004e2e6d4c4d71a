"""What a model's ``forward`` returns when it has auxiliary heads.

A model returns its logits as one tensor, except a model with an auxiliary classifier in training mode
(the Ladder-style DenseNet's context-layer logits, Krešo et al. Sec. 5.1): it returns an ``AuxOutput``,
which the training engine scores as ``(1 - optim.aux_weight) x main + optim.aux_weight x auxiliary``.
In evaluation mode every model returns the main logits alone. ``AuxOutput`` is a named tuple, so
``logits, aux_logits = model(x)`` unpacks it.
"""

from typing import NamedTuple

from torch import Tensor


class AuxOutput(NamedTuple):
    """The training output of a model with an auxiliary head: both ``(N, num_classes, H, W)`` at the input size."""

    logits: Tensor
    aux_logits: Tensor


__all__ = ["AuxOutput"]
