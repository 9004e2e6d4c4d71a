"""BatchNorm of pooled maps: the image-level branch of DeepLabv3's ASPP (Sec. 3.3), the 1x1 bin of the Ladder
DenseNet's SPP context and DFANet's FC attention normalise ``(N, C, 1, 1)`` maps, which a training batch of
one image reduces to one value per channel."""

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


__all__ = ["PooledBatchNorm"]
