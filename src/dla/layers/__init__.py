"""Shared layers: convolution-BatchNorm-ReLU, the residual blocks of Fig. 9, the classifier, BatchNorm of pooled
maps, up-sampling and initialisation."""

from .blocks import BasicBlock, BlockFactory, Bottleneck, SplitBlock
from .classifier import create_classifier
from .conv_bn_act import ConvBnAct
from .norm import CpuSyncBatchNorm, PooledBatchNorm, convert_sync_batchnorm

__all__ = [
    "BasicBlock",
    "BlockFactory",
    "Bottleneck",
    "ConvBnAct",
    "CpuSyncBatchNorm",
    "PooledBatchNorm",
    "SplitBlock",
    "convert_sync_batchnorm",
    "create_classifier",
]
