"""Normalisation layers.

- ``PooledBatchNorm``: BatchNorm of pooled maps: the image-level branch of DeepLabv3's ASPP (Sec. 3.3), the 1x1
  bin of the Ladder DenseNet's SPP context and DFANet's FC attention normalise ``(N, C, 1, 1)`` maps, which a
  training batch of one image reduces to one value per channel.
- ``convert_sync_batchnorm`` (and ``CpuSyncBatchNorm``): BatchNorm whose batch statistics are those of every
  process's batch together (the papers' multi-GPU recipes), on CUDA and on the CPU alike.
"""

import torch
import torch.distributed as dist
import torch.distributed._functional_collectives as collective
import torch.nn.functional as F
from torch import Tensor, nn


class PooledBatchNorm(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` that, in training, normalises a map with one value per channel (batch 1, 1x1) with
    its running statistics and leaves them untouched: BatchNorm cannot estimate statistics from one value.

    Shapes: ``(N, C, H, W) -> (N, C, H, W)``.
    """

    def forward(self, x: Tensor) -> Tensor:
        if self.training and x.shape[0] * x.shape[2] * x.shape[3] == 1:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        return super().forward(x)


class CpuSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics are those of every process's batch together, for CPU tensors (Gloo).

    ``torch.nn.SyncBatchNorm`` runs on CUDA only (its kernels are CUDA's, and DistributedDataParallel refuses it
    in a CPU model). In training, under a process group of two or more, this computes the same statistics with one
    call of PyTorch's differentiable functional collective (``torch.distributed._functional_collectives.all_reduce``,
    which PyTorch's deprecation of ``torch.distributed.nn.functional.all_reduce`` points to): the per-channel sums
    and sums of squares of every process, and their pixel counts. The sums are taken of the input less the running
    mean (the same in every process: DistributedDataParallel broadcasts the buffers), so that the variance,
    ``E[(x - m)^2] - E[x - m]^2``, loses no precision to a mean far from zero. The gradients flow through the
    statistics as in PyTorch's version, and the running statistics take the unbiased variance. Otherwise
    (evaluation, one process) it is BatchNorm.

    Mixed precision: the statistics and the normalisation are computed in float32 (float64 for a float64 input),
    whatever autocast gives the layer, and the running statistics are updated in their own dtype; the output has
    the input's dtype, as BatchNorm's has under autocast.

    Parameters, buffers and state-dict keys are BatchNorm's. Shapes: ``(N, C, ...) -> (N, C, ...)``.
    """

    def __init__(self, *args, process_group: dist.ProcessGroup | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.process_group = process_group

    def _check_input_dim(self, x: Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input (N, C, ...), got {x.dim()}D")

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or not _synchronised(self.process_group):
            return super().forward(x)
        with torch.autocast(x.device.type, enabled=False):
            return self._normalise(x.to(torch.promote_types(x.dtype, torch.float32))).to(x.dtype)

    def _normalise(self, x: Tensor) -> Tensor:
        group: dist.ProcessGroup = self.process_group or dist.group.WORLD  # type: ignore[assignment]
        channels, dims = x.shape[1], [0, *range(2, x.dim())]
        shape = (1, -1) + (1,) * (x.dim() - 2)
        shift = x.new_zeros(channels) if self.running_mean is None else self.running_mean.detach().to(x.dtype)
        shifted = x - shift.view(shape)
        count = x.new_full((1,), x.numel() / channels)
        sums = collective.all_reduce(torch.cat([shifted.sum(dims), shifted.square().sum(dims), count]), "sum", group)
        total = sums[-1]
        if total.item() <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got {int(total.item())} over all processes")
        shifted_mean = sums[:channels] / total
        variance = (sums[channels:-1] / total - shifted_mean.square()).clamp_min(0)
        mean = shifted_mean + shift
        y = (x - mean.view(shape)) * torch.rsqrt(variance + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            self._update_running_stats(mean.detach(), variance.detach() * total / (total - 1))
        return y

    @torch.no_grad()
    def _update_running_stats(self, mean: Tensor, unbiased_variance: Tensor) -> None:
        assert self.running_mean is not None and self.running_var is not None and self.num_batches_tracked is not None
        self.num_batches_tracked.add_(1)
        factor = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked.item())
        self.running_mean.lerp_(mean.to(self.running_mean.dtype), factor)
        self.running_var.lerp_(unbiased_variance.to(self.running_var.dtype), factor)


def convert_sync_batchnorm(module: nn.Module, process_group: dist.ProcessGroup | None = None) -> nn.Module:
    """``module`` with every BatchNorm (``PooledBatchNorm`` included) synchronised across processes; returns the
    new root. The parameters and buffers are the same tensors, so the state-dict keys and values are unchanged.

    A CUDA model gets PyTorch's ``torch.nn.SyncBatchNorm`` (``convert_sync_batchnorm``); a CPU model gets
    ``CpuSyncBatchNorm``. A ``PooledBatchNorm`` synchronised over two processes or more always sees two values
    per channel or more, so it takes batch statistics as BatchNorm does at that global batch.
    """
    if any(p.is_cuda for p in module.parameters()):
        return nn.SyncBatchNorm.convert_sync_batchnorm(module, process_group)
    return _convert_cpu(module, process_group)


def _convert_cpu(module: nn.Module, process_group: dist.ProcessGroup | None) -> nn.Module:
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        converted = CpuSyncBatchNorm(
            module.num_features,
            module.eps,
            module.momentum,
            module.affine,
            module.track_running_stats,
            process_group=process_group,
        )
        if module.affine:
            converted.weight, converted.bias = module.weight, module.bias
        if module.track_running_stats:
            converted.running_mean, converted.running_var = module.running_mean, module.running_var
            converted.num_batches_tracked = module.num_batches_tracked
        return converted.train(module.training)
    for name, child in module.named_children():
        module.add_module(name, _convert_cpu(child, process_group))
    return module


def _synchronised(group: dist.ProcessGroup | None) -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size(group or dist.group.WORLD) > 1


__all__ = ["CpuSyncBatchNorm", "PooledBatchNorm", "convert_sync_batchnorm"]
