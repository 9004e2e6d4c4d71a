"""Convolution, BatchNorm and ReLU as one module."""

from torch import nn


class ConvBnAct(nn.Sequential):
    """``Conv2d -> BatchNorm2d -> ReLU`` at indices 0, 1, 2.

    The indices are those of the authors' checkpoints (``base_layer.0.weight``, ``project.1.bias``).
    The convolution has no bias: BatchNorm's shift plays its part. Padding keeps the size at stride 1
    (``dilation * (kernel_size - 1) // 2``). ``act=False`` gives a linear projection (Conv-BN).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
        act: bool = True,
    ) -> None:
        super().__init__(
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=dilation * (kernel_size - 1) // 2,
                dilation=dilation,
                groups=groups,
                bias=False,
            ),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True) if act else nn.Identity(),
        )
