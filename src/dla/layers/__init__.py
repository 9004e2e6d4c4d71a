"""Shared layers: convolution-BatchNorm-ReLU and the residual blocks of Fig. 9."""

from .blocks import BasicBlock, BlockFactory, Bottleneck, SplitBlock
from .conv_bn_act import ConvBnAct

__all__ = ["BasicBlock", "BlockFactory", "Bottleneck", "ConvBnAct", "SplitBlock"]
