"""ResNet (He et al., CVPR 2016) with torchvision's state-dict keys, for the peer systems (DeepLabv3) and as the
paper's baseline (Fig. 5).

The layout is torchvision's, so its ImageNet files load unchanged: ``conv1``/``bn1`` (7x7, stride 2), a 3x3
max-pool, four stages ``layer1``-``layer4`` of basic (ResNet-18/34) or bottleneck (ResNet-50/101/152, expansion
4, stride on the 3x3) blocks, each stage's first block with a ``downsample`` projection, then global average
pooling and ``fc``.

Atrous convolution (DeepLabv3, Sec. 3.1): ``output_stride`` 16 or 8 replaces the striding of the last stages by
dilation; the first block of a dilated stage keeps the previous rate, as torchvision does. Multi-grid (Sec.
3.2.1): ``multi_grid`` gives the last stage's unit rates relative to its rate, so ``output_stride=16`` (rate
2) with ``multi_grid=(1, 2, 4)`` gives rates (2, 4, 8). Strides and rates are set in one place,
``set_output_stride``, which the constructor calls and which switches a trained model (DeepLabv3 trains at 16
and evaluates at 8, Sec. 4.2): the weights do not depend on them.
"""

from collections.abc import Sequence

from torch import Tensor, nn

from ..errors import DLAError
from ..layers.classifier import create_classifier
from ..layers.weight_init import init_conv_bn
from ._features import Backbone, FeatureInfo, FeatureLevel, Levels
from ._pretrained import PretrainedCfg, torchvision_cfg
from ._registry import register_model


def set_conv_geometry(conv: nn.Conv2d, stride: int, dilation: int) -> None:
    """Make a 3x3 ``conv`` stride by ``stride`` and dilate by ``dilation``, padded to keep ``H / stride``."""
    conv.stride, conv.dilation, conv.padding = (stride, stride), (dilation, dilation), (dilation, dilation)


def set_shortcut_stride(downsample: nn.Sequential | None, stride: int) -> None:
    """Stride a shortcut's first layer (a 1x1 projection, or the parameter-free subsampling of a replica)."""
    if downsample is not None:
        first = downsample[0]
        if not isinstance(first, (nn.Conv2d, nn.MaxPool2d)):
            raise DLAError(f"a shortcut starts with a 1x1 convolution or max-pool, not a {type(first).__name__}")
        first.stride = (stride, stride)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions (ResNet-18/34); ``downsample`` projects the shortcut when the shape changes."""

    expansion = 1

    def __init__(
        self, in_channels: int, width: int, stride: int = 1, dilation: int = 1, downsample: nn.Sequential | None = None
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, stride, padding=dilation, dilation=dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(width, width, 3, 1, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = downsample

    def set_geometry(self, stride: int, dilation: int) -> None:
        """Stride the first 3x3 (and the shortcut), dilate both 3x3s by ``dilation``."""
        set_conv_geometry(self.conv1, stride, dilation)
        set_conv_geometry(self.conv2, 1, dilation)
        set_shortcut_stride(self.downsample, stride)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + shortcut)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided, dilated), 1x1 expand by 4 (ResNet-50/101/152, torchvision's "V1.5")."""

    expansion = 4

    def __init__(
        self, in_channels: int, width: int, stride: int = 1, dilation: int = 1, downsample: nn.Sequential | None = None
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def set_geometry(self, stride: int, dilation: int) -> None:
        """Stride (and dilate) the 3x3, stride the shortcut."""
        set_conv_geometry(self.conv2, stride, dilation)
        set_shortcut_stride(self.downsample, stride)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + shortcut)


Block = type[BasicBlock | Bottleneck]


def make_stage(block: Block, in_channels: int, width: int, blocks: int, stride: int) -> nn.Sequential:
    """``blocks`` blocks; the first strides and projects the shortcut when the shape changes (rates: 1 until
    ``set_geometry``)."""
    out_channels = width * block.expansion
    downsample = None
    if stride != 1 or in_channels != out_channels:
        downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels))
    units = [block(in_channels, width, stride, 1, downsample)]
    return nn.Sequential(*units, *[block(out_channels, width) for _ in range(blocks - 1)])


def stage_blocks(stage: nn.Sequential) -> list[BasicBlock | Bottleneck]:
    """The blocks of a stage (``make_stage``, or a replica of DeepLabv3), in order."""
    blocks = []
    for unit in stage:
        if not isinstance(unit, (BasicBlock, Bottleneck)):
            raise DLAError(f"a ResNet stage holds BasicBlock or Bottleneck units, not a {type(unit).__name__}")
        blocks.append(unit)
    return blocks


def set_stage_geometry(stage: nn.Sequential, stride: int, rates: Sequence[int]) -> None:
    """The first block strides by ``stride``; block ``i`` dilates by ``rates[i]``."""
    for i, (unit, rate) in enumerate(zip(stage_blocks(stage), rates, strict=True)):
        unit.set_geometry(stride if i == 0 else 1, rate)


def stage_rates(output_stride: int) -> list[int]:
    """The dilation rate of stages 1-4: 1 while striding, doubling for each stride replaced below 32."""
    if output_stride not in (8, 16, 32):
        raise DLAError(f"output_stride must be 8, 16 or 32, got {output_stride}")
    return {32: [1, 1, 1, 1], 16: [1, 1, 1, 2], 8: [1, 1, 2, 4]}[output_stride]


def unit_rates(blocks: int, rate: int, previous: int, multi_grid: Sequence[int] | None = None) -> list[int]:
    """The dilation of each block of a stage at ``rate``: the first keeps the ``previous`` stage's rate, as
    torchvision does; with ``multi_grid`` every block has ``rate`` times its own unit rate (DeepLabv3)."""
    if multi_grid is not None:
        return [rate * unit for unit in multi_grid]
    return [previous] + [rate] * (blocks - 1)


class ResNet(Backbone):
    """A ResNet with torchvision's layout.

    Args:
        block: ``BasicBlock`` or ``Bottleneck``.
        layers: blocks per stage (ResNet-50: ``(3, 4, 6, 3)``).
        num_classes: classifier outputs; 0 for none (``forward`` then returns pooled features).
        in_chans: input channels.
        output_stride: 32, 16 or 8 (atrous convolution in the last stages).
        multi_grid: unit rates of the last stage relative to its rate (DeepLabv3's Multi_Grid); ``None``: all 1.
        pretrained_cfg: the published weights of this variant.

    Shapes: ``(N, in_chans, H, W) -> (N, num_classes)``; stage ``i`` (``layer{i}``) has ``64 * 2**(i-1) *
    expansion`` channels at ``H / 4, H / 8, H / 16, H / 32`` (capped at ``output_stride``).
    """

    def __init__(
        self,
        block: Block,
        layers: Sequence[int],
        num_classes: int = 1000,
        in_chans: int = 3,
        output_stride: int = 32,
        multi_grid: Sequence[int] | None = None,
        pretrained_cfg: PretrainedCfg | None = None,
    ) -> None:
        super().__init__()
        if multi_grid is not None and len(multi_grid) != layers[3]:
            raise DLAError(f"multi_grid needs one rate per block of the last stage ({layers[3]}), got {list(multi_grid)}")
        self.num_classes = num_classes
        self.multi_grid = tuple(multi_grid) if multi_grid is not None else None
        self.block_name = "Basic" if block is BasicBlock else "Bottleneck"  # as the DLA table names them
        self.pretrained_cfg = pretrained_cfg or PretrainedCfg(first_conv="conv1")
        self.conv1 = nn.Conv2d(in_chans, 64, 7, 2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, padding=1)
        widths = [64 * block.expansion * 2**i for i in range(4)]
        self.layer1 = make_stage(block, 64, 64, layers[0], 1)
        self.layer2 = make_stage(block, widths[0], 128, layers[1], 2)
        self.layer3 = make_stage(block, widths[1], 256, layers[2], 2)
        self.layer4 = make_stage(block, widths[2], 512, layers[3], 2)
        self.num_features = 512 * block.expansion
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = create_classifier(self.num_features, num_classes)
        self.widths = widths
        self.set_output_stride(output_stride)
        init_conv_bn(self)

    def set_output_stride(self, output_stride: int) -> None:
        """Stride or dilate the stages for ``output_stride`` 32, 16 or 8 (Sec. 3.1); the weights are kept, so
        a model trained at 16 can be evaluated at 8 (Sec. 4.2)."""
        rates = stage_rates(output_stride)
        stages = (self.layer1, self.layer2, self.layer3, self.layer4)
        for i, (stage, rate) in enumerate(zip(stages, rates, strict=True)):
            previous = rates[max(i - 1, 0)]
            stride = 2 if i > 0 and rate == 1 else 1
            set_stage_geometry(stage, stride, unit_rates(len(stage), rate, previous, self.multi_grid if i == 3 else None))
        self.output_stride = output_stride
        reductions = [min(4 * 2**i, output_stride) for i in range(4)]
        self.feature_info = FeatureInfo(
            [FeatureLevel(num_chs=64, reduction=2, module="relu")]
            + [
                FeatureLevel(num_chs=c, reduction=r, module=f"layer{i + 1}")
                for i, (c, r) in enumerate(zip(self.widths, reductions, strict=True))
            ]
        )

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier by a fresh one with ``num_classes`` outputs (0: none)."""
        self.num_classes = num_classes
        self.fc = create_classifier(self.num_features, num_classes)

    def levels(self) -> Levels:
        """The five levels (``Levels``): the stem (``conv1``, ``bn1``, ``relu``), ``(N, 64, H / 2, W / 2)``, then
        the max-pool and ``layer1``, and ``layer2``-``layer4``, at strides 4, 8, 16, 32 (capped at
        ``output_stride``); ``forward_features`` gives ``layer4``'s ``(N, num_features, H / output_stride,
        W / output_stride)``."""
        stem = (self.conv1, self.bn1, self.relu)
        return [stem, (self.maxpool, self.layer1), (self.layer2,), (self.layer3,), (self.layer4,)]

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """``(N, C, h, w) -> (N, num_classes)``, or the pooled ``(N, C)`` with ``pre_logits``."""
        x = self.avgpool(x).flatten(1)
        return x if pre_logits else self.fc(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


default_cfgs = {
    "resnet18": torchvision_cfg("resnet18-f37072fd", "ResNet-18", first_conv="conv1"),
    "resnet34": torchvision_cfg("resnet34-b627a593", "ResNet-34", first_conv="conv1"),
    "resnet50": torchvision_cfg("resnet50-0676ba61", "ResNet-50", first_conv="conv1"),
    "resnet101": torchvision_cfg("resnet101-63fe2227", "ResNet-101", first_conv="conv1"),
    "resnet152": torchvision_cfg("resnet152-394f9c45", "ResNet-152", first_conv="conv1"),
}


@register_model
def resnet18(**kwargs) -> ResNet:
    """ResNet-18: basic blocks (2, 2, 2, 2)."""
    return ResNet(BasicBlock, (2, 2, 2, 2), pretrained_cfg=default_cfgs["resnet18"], **kwargs)


@register_model
def resnet34(**kwargs) -> ResNet:
    """ResNet-34: basic blocks (3, 4, 6, 3); DLA-34's counterpart (Fig. 5)."""
    return ResNet(BasicBlock, (3, 4, 6, 3), pretrained_cfg=default_cfgs["resnet34"], **kwargs)


@register_model
def resnet50(**kwargs) -> ResNet:
    """ResNet-50: bottlenecks (3, 4, 6, 3); a DeepLabv3 backbone."""
    return ResNet(Bottleneck, (3, 4, 6, 3), pretrained_cfg=default_cfgs["resnet50"], **kwargs)


@register_model
def resnet101(**kwargs) -> ResNet:
    """ResNet-101: bottlenecks (3, 4, 23, 3); DeepLabv3's main backbone."""
    return ResNet(Bottleneck, (3, 4, 23, 3), pretrained_cfg=default_cfgs["resnet101"], **kwargs)


@register_model
def resnet152(**kwargs) -> ResNet:
    """ResNet-152: bottlenecks (3, 8, 36, 3)."""
    return ResNet(Bottleneck, (3, 8, 36, 3), pretrained_cfg=default_cfgs["resnet152"], **kwargs)


__all__ = ["BasicBlock", "Bottleneck", "ResNet", "stage_rates", "unit_rates"]
