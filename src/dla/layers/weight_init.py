"""The initialisation the convolutional networks here share (He et al.'s, as in ResNet and the authors' DLA)."""

from collections.abc import Sequence

from torch import nn


def init_conv_bn(model: nn.Module, skip: Sequence[nn.Module] = ()) -> None:
    """Kaiming-normal (fan-out, ReLU) convolution weights and unit-scale, zero-shift BatchNorm in ``model``,
    leaving the modules of ``skip`` (e.g. a classifier stored as a convolution) with their own defaults."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d) and not any(m is s for s in skip):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
