"""Summing accumulator state across ``torch.distributed`` processes.

No caller yet: distributed evaluation (each rank scores a shard, then the confusion matrices, top-k counts
and BSDS counts are summed, so that the scores equal a single process's) will call the accumulators'
``all_reduce``, which use this. Kept, and tested, for that.
"""

import torch.distributed as dist
from torch import Tensor


def all_reduce_sum(tensor: Tensor) -> Tensor:
    """Sum ``tensor`` in place over all processes when a process group is initialised; otherwise leave it.

    The tensor must live where the backend expects it (CUDA for NCCL, CPU for Gloo); accumulators keep their
    state on the device of the inputs they were updated with, which is what the training loop's backend uses.
    """
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor
