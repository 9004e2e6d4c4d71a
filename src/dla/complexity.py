"""Model size and cost: parameters and multiply-adds.

Multiply-adds are ``torch.utils.flop_counter.FlopCounterMode``'s FLOP total divided by two, the papers'
"FLOPs" (Table 2 counts fused multiply-adds). Only what ``forward`` computes is counted: convolutions and
matrix products; pooling, BatchNorm and activations are not.
"""

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: nn.Module) -> int:
    """All parameters, trainable or not."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, input_size: Sequence[int] = (1, 3, 224, 224)) -> int:
    """Multiply-adds of one forward pass on an input of ``input_size``.

    Runs on the model's device; a model built under ``torch.device("meta")`` is counted without any
    arithmetic, in milliseconds.
    """
    device = next(model.parameters()).device
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(*input_size, device=device))
    return counter.get_total_flops() // 2
