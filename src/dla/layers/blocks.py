"""The convolutional blocks of Fig. 9 (App. A): basic, bottleneck and split.

Each block maps ``(N, in_channels, H, W) -> (N, out_channels, H / stride, W / stride)`` and adds a
residual before its last ReLU. The residual is *given* by the caller: in a DLA the hierarchical
aggregation (``dla.aggregation.HDA``) owns the down-sampling and projection shortcut of its first
block, as in the authors' layout, so a block has no ``downsample`` of its own. Without a residual the
block adds its input (identity shortcut, same shape in and out).

All three share one constructor signature, ``block(in_channels, out_channels, stride=1, dilation=1)``,
which is what an HDA expects of any block (``BlockFactory``).
"""

from collections.abc import Callable

from torch import Tensor, nn

BlockFactory = Callable[..., nn.Module]
"""``factory(in_channels, out_channels, stride=1, dilation=1) -> nn.Module``."""


def _conv3x3(in_channels: int, out_channels: int, stride: int, dilation: int, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=dilation, dilation=dilation, groups=groups, bias=False)


def _conv1x1(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1, bias=False)


class BasicBlock(nn.Module):
    """Fig. 9(a): two 3x3 convolutions, as in ResNet-34. ``stride`` and ``dilation`` act on both."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_channels, out_channels, stride, dilation)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(out_channels, out_channels, 1, dilation)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x: Tensor, residual: Tensor | None = None) -> Tensor:
        residual = x if residual is None else residual
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + residual)


class Bottleneck(nn.Module):
    """Fig. 9(b): 1x1 reduce, 3x3, 1x1 expand.

    App. A: "we reduce the ratio of bottleneck blocks from 4 to 2", so the inner width is
    ``out_channels // 2`` (ResNet uses ``// 4``). ``width`` and ``groups`` are the knobs the split block
    turns; the 3x3 convolution carries the stride and dilation.
    """

    expansion = 2

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        dilation: int = 1,
        width: int | None = None,
        groups: int = 1,
    ) -> None:
        super().__init__()
        width = out_channels // self.expansion if width is None else width
        self.conv1 = _conv1x1(in_channels, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = _conv3x3(width, width, stride, dilation, groups)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = _conv1x1(width, out_channels)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor, residual: Tensor | None = None) -> Tensor:
        residual = x if residual is None else residual
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + residual)


class SplitBlock(Bottleneck):
    """Fig. 9(c): the ResNeXt block, a bottleneck whose 3x3 convolution is split into ``cardinality`` groups.

    Sec. 3.3: "the cardinality of our split blocks is 32". Each group is ``out_channels / 32`` wide, so
    the inner width is ``out_channels * cardinality / 32``: with 32 groups it equals ``out_channels``,
    and ``cardinality=64`` (DLA-X-102 64, App. A) doubles the 3x3 channels, as ResNeXt-101 64x4d does.
    Cardinality belongs to the instance, so building one variant never changes another.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, dilation: int = 1, cardinality: int = 32) -> None:
        super().__init__(
            in_channels,
            out_channels,
            stride,
            dilation,
            width=out_channels * cardinality // 32,
            groups=cardinality,
        )
        self.cardinality = cardinality


def block_name(block: BlockFactory) -> str:
    """A short human name for a block factory: ``Basic``, ``Bottleneck``, ``Split``, or the callable's name."""
    func = getattr(block, "func", block)  # functools.partial
    name = getattr(func, "__name__", type(func).__name__)
    return name[: -len("Block")] if name.endswith("Block") and name != "Block" else name


__all__ = ["BasicBlock", "BlockFactory", "Bottleneck", "SplitBlock", "block_name"]
