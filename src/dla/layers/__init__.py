"""Shared layers: convolution-BatchNorm-ReLU, the residual blocks of Fig. 9, up-sampling and initialisation."""

from .blocks import BasicBlock, BlockFactory, Bottleneck, SplitBlock
from .conv_bn_act import ConvBnAct

__all__ = ["BasicBlock", "BlockFactory", "Bottleneck", "ConvBnAct", "SplitBlock"]
