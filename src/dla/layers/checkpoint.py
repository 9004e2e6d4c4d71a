"""Activation checkpointing of a module: its inner activations are dropped after the forward pass and
recomputed during the backward pass (``torch.utils.checkpoint``, non-reentrant), trading compute for memory.

The recomputation runs the module again in training mode, which would update its BatchNorm running
statistics a second time per step; ``checkpointed`` restores them after the recomputation, so a
checkpointed model trains exactly like the plain one (same gradients, same running statistics).
"""

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint


@contextmanager
def _batchnorm_statistics_kept(module: nn.Module) -> Iterator[None]:
    """Restore the BatchNorm buffers of ``module`` (running mean, variance, batch count) on exit."""
    buffers = [b for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) for b in m.buffers()]
    saved = [b.clone() for b in buffers]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in zip(buffers, saved, strict=True):
                buffer.copy_(value)


def checkpointed(module: nn.Module) -> Callable[[Tensor], Tensor]:
    """``module`` as a function whose activations are recomputed in the backward pass instead of stored."""

    def contexts() -> tuple[AbstractContextManager[None], AbstractContextManager[None]]:
        return nullcontext(), _batchnorm_statistics_kept(module)

    def run(x: Tensor) -> Tensor:
        return checkpoint(module, x, use_reentrant=False, context_fn=contexts)

    return run
