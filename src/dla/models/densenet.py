"""DenseNet-BC (Huang et al., CVPR 2017) with torchvision's state-dict keys: the downsampling path of the
Ladder-style DenseNet (Krešo et al., ICCVW 2017, Sec. 3-4).

The layout is torchvision's documented one, so its ImageNet files load: ``features`` holds the stem
(``conv0`` 7x7 stride 2, ``norm0``, ``relu0``, ``pool0`` 3x3 max-pool stride 2), four dense blocks
``denseblock1``-``denseblock4`` with the transitions ``transition1``-``transition3`` between them, and
``norm5``; then ReLU, global average pooling and the linear ``classifier``.

A dense layer (``denselayer{i}``, Fig. 2b of Krešo et al.) is two pre-activation units, BN-ReLU-1x1 conv to
``4 * k`` maps and BN-ReLU-3x3 conv to ``k = 32`` maps, whose output is concatenated to its input; a
transition is BN-ReLU-1x1 conv halving the maps, then 2x2 average pooling. DenseNet-121 has (6, 12, 24, 16)
layers per block, DenseNet-169 (6, 12, 32, 32).

torchvision's published files use older names (``denselayer1.norm.1.weight``, ``conv.2``, ...):
``filter_checkpoint`` renames them, and ``load_pretrained`` applies it to every file it reads.

Only ``output_stride=32``: the Ladder DenseNet recovers resolution by upsampling, not by dilation. It
subsamples further instead: ``split_blocks`` splits dense blocks in halves by a 2x2 average pooling (Krešo et
al. Sec. 3, DB4a and DB4b), which adds a level and no weights. The levels (``feature_info``,
``forward_intermediates``) are the stem, every dense block (a split one twice) and, last, ``norm5`` and ReLU.
Initialisation: ``init_conv_bn`` (Kaiming-normal convolutions, fan-out; torchvision's fan-in differs only
in scale), a zero linear bias, as torchvision.
"""

import re
from collections import OrderedDict
from collections.abc import Sequence
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import DLAError
from ..layers.classifier import create_classifier
from ..layers.weight_init import init_conv_bn
from ._features import Backbone, FeatureInfo, FeatureLevel, Levels
from ._pretrained import PretrainedCfg, torchvision_cfg
from ._registry import register_model

# torchvision's old names: ``denselayer3.norm.1.weight`` is ``denselayer3.norm1.weight`` today
_OLD_DENSE_LAYER_KEY = re.compile(r"(denselayer\d+\.(?:norm|conv))\.([12])\.")

# "D" of Krešo et al. Fig. 1, splitting a dense block: 2x2 average pooling, sizes rounded up
_split_pool = partial(F.avg_pool2d, kernel_size=2, stride=2, ceil_mode=True)


class DenseLayer(nn.Sequential):
    """BN-ReLU-1x1 conv (``bn_size * growth_rate`` maps), BN-ReLU-3x3 conv: ``(N, C, H, W) -> (N, k, H, W)``."""

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int) -> None:
        width = bn_size * growth_rate
        super().__init__(
            OrderedDict(
                norm1=nn.BatchNorm2d(in_channels),
                relu1=nn.ReLU(inplace=True),
                conv1=nn.Conv2d(in_channels, width, 1, bias=False),
                norm2=nn.BatchNorm2d(width),
                relu2=nn.ReLU(inplace=True),
                conv2=nn.Conv2d(width, growth_rate, 3, padding=1, bias=False),
            )
        )


class DenseBlock(nn.ModuleDict):
    """``num_layers`` dense layers, each seeing the concatenation of the block input and all earlier outputs.

    ``forward(x, start, stop)`` runs layers ``start:stop`` only, so that a block can be split in halves with
    a pooling between them (DB4a and DB4b, Krešo et al. Sec. 3): ``(N, width(start), H, W) -> (N,
    width(stop), H, W)``.
    """

    def __init__(self, num_layers: int, in_channels: int, growth_rate: int, bn_size: int) -> None:
        super().__init__(
            {f"denselayer{i + 1}": DenseLayer(in_channels + i * growth_rate, growth_rate, bn_size) for i in range(num_layers)}
        )
        self.in_channels = in_channels
        self.growth_rate = growth_rate

    def width(self, layers: int | None = None) -> int:
        """Channels after the first ``layers`` layers (all by default)."""
        return self.in_channels + (len(self) if layers is None else layers) * self.growth_rate

    def forward(self, x: Tensor, start: int = 0, stop: int | None = None) -> Tensor:
        for layer in list(self.values())[start:stop]:
            x = torch.cat([x, layer(x)], dim=1)
        return x


class Transition(nn.Sequential):
    """BN-ReLU-1x1 conv, 2x2 average pooling: ``(N, C, H, W) -> (N, C / 2, H / 2, W / 2)`` (sizes floored)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            OrderedDict(
                norm=nn.BatchNorm2d(in_channels),
                relu=nn.ReLU(inplace=True),
                conv=nn.Conv2d(in_channels, out_channels, 1, bias=False),
                pool=nn.AvgPool2d(2, 2),
            )
        )


class DenseNet(Backbone):
    """A DenseNet-BC with torchvision's layout.

    Args:
        block_config: dense layers per block (DenseNet-121: ``(6, 12, 24, 16)``).
        growth_rate: ``k``, maps each dense layer adds (32).
        num_init_features: maps of the stem (64).
        bn_size: the 1x1 convolution's width in units of ``k`` (4).
        num_classes: classifier outputs; 0 for none (``forward`` then returns pooled features).
        in_chans: input channels.
        output_stride: only 32.
        split_blocks: dense blocks (1-based) split in halves by a pooling (``set_split_blocks``); none by default.
        pretrained_cfg: the published weights of this variant.

    Shapes: ``(N, in_chans, H, W) -> (N, num_classes)``; dense block ``i`` ends at ``H / 2**(i + 1)`` with
    ``block_widths[i - 1]`` channels (DenseNet-121: 256, 512, 1024, 1024), each split block at twice the
    stride after it.
    """

    def __init__(
        self,
        block_config: Sequence[int],
        growth_rate: int = 32,
        num_init_features: int = 64,
        bn_size: int = 4,
        num_classes: int = 1000,
        in_chans: int = 3,
        output_stride: int = 32,
        split_blocks: Sequence[int] = (),
        pretrained_cfg: PretrainedCfg | None = None,
    ) -> None:
        super().__init__()
        if output_stride != 32:
            raise DLAError(f"DenseNet has no dilated variant here: output_stride must be 32, got {output_stride}")
        self.num_classes = num_classes
        self.block_name = "Dense"
        self.pretrained_cfg = pretrained_cfg or PretrainedCfg(first_conv="features.conv0", classifier="classifier")
        self.num_init_features = num_init_features
        self.features = nn.Sequential(
            OrderedDict(
                conv0=nn.Conv2d(in_chans, num_init_features, 7, 2, padding=3, bias=False),
                norm0=nn.BatchNorm2d(num_init_features),
                relu0=nn.ReLU(inplace=True),
                pool0=nn.MaxPool2d(3, 2, padding=1),
            )
        )
        channels = num_init_features
        self.block_widths: list[int] = []
        for i, num_layers in enumerate(block_config, start=1):
            block = DenseBlock(num_layers, channels, growth_rate, bn_size)
            self.features.add_module(f"denseblock{i}", block)
            channels = block.width()
            self.block_widths.append(channels)
            if i < len(block_config):
                self.features.add_module(f"transition{i}", Transition(channels, channels // 2))
                channels //= 2
        self.features.add_module("norm5", nn.BatchNorm2d(channels))
        self.num_features = channels
        self.classifier = create_classifier(channels, num_classes)
        self.set_split_blocks(split_blocks)
        init_conv_bn(self)
        if isinstance(self.classifier, nn.Linear):  # num_classes > 0
            nn.init.zeros_(self.classifier.bias)

    def dense_blocks(self) -> list[DenseBlock]:
        """``denseblock1``, ``denseblock2``, ... in order."""
        return [module for module in self.features.children() if isinstance(module, DenseBlock)]

    def set_split_blocks(self, split_blocks: Sequence[int]) -> None:
        """Split the dense blocks ``split_blocks`` (1-based) in halves by a 2x2 average pooling, DBia, D, DBib
        (Krešo et al. Sec. 3; DB4 for the Ladder DenseNet, DB3 and DB4 for its "split3+4"). The pooling rounds
        sizes up, so that small inputs keep a position at every level; it has no weights, so the keys and
        the ImageNet filters stay. A split block gives two levels, the second at twice the first's stride."""
        blocks = self.dense_blocks()
        if not all(1 <= i <= len(blocks) for i in split_blocks):
            raise DLAError(f"split_blocks {list(split_blocks)}: dense blocks are 1-{len(blocks)}")
        self.split_blocks = tuple(sorted(split_blocks))
        levels = [FeatureLevel(num_chs=self.num_init_features, reduction=2, module="features.relu0")]
        for i, block in enumerate(blocks, start=1):
            name = f"features.denseblock{i}"
            widths = [block.width(len(block) // 2), block.width()] if i in self.split_blocks else [block.width()]
            for width in widths:
                levels.append(FeatureLevel(num_chs=width, reduction=2 * levels[-1]["reduction"], module=name))
        levels[-1]["module"] = "features.norm5"
        self.feature_info = FeatureInfo(levels)

    def filter_checkpoint(self, state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
        """torchvision's old key names (``denselayer1.norm.1.weight``) to today's (``denselayer1.norm1.weight``)."""
        return {_OLD_DENSE_LAYER_KEY.sub(r"\1\2.", k): v for k, v in state_dict.items()}

    def get_classifier(self) -> nn.Module:
        return self.classifier

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier by a fresh one with ``num_classes`` outputs (0: none)."""
        self.num_classes = num_classes
        self.classifier = create_classifier(self.num_features, num_classes)

    def levels(self) -> Levels:
        """The levels (``Levels``): the stem up to ``relu0``, ``(N, 64, H / 2, W / 2)``; each dense block after
        its entry (``pool0`` or the previous transition), a split block as two levels; the last one ends with
        ``norm5`` and ReLU: ``forward_features`` gives ``(N, num_features, H / 32, W / 32)`` (stride 64 with one
        split block, 128 with two)."""
        layer = self.features.get_submodule
        blocks = self.dense_blocks()
        levels: Levels = [(layer("conv0"), layer("norm0"), layer("relu0"))]
        entry = layer("pool0")
        for i, block in enumerate(blocks, start=1):
            if i in self.split_blocks:
                half = len(block) // 2
                levels += [(entry, partial(block, stop=half)), (_split_pool, partial(block, start=half))]
            else:
                levels.append((entry, block))
            if i < len(blocks):
                entry = layer(f"transition{i}")
        levels[-1] = (*levels[-1], layer("norm5"), F.relu)
        return levels

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """``(N, C, h, w) -> (N, num_classes)``, or the pooled ``(N, C)`` with ``pre_logits``."""
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return x if pre_logits else self.classifier(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


_LAYOUT = dict(first_conv="features.conv0", classifier="classifier")

default_cfgs = {
    "densenet121": torchvision_cfg("densenet121-a639ec97", "DenseNet-121", **_LAYOUT),
    "densenet169": torchvision_cfg("densenet169-b2777c0a", "DenseNet-169", **_LAYOUT),
}


@register_model
def densenet121(**kwargs) -> DenseNet:
    """DenseNet-121: (6, 12, 24, 16) dense layers, k = 32; "8M" parameters (Krešo et al. Tables 2 and 5)."""
    return DenseNet((6, 12, 24, 16), pretrained_cfg=default_cfgs["densenet121"], **kwargs)


@register_model
def densenet169(**kwargs) -> DenseNet:
    """DenseNet-169: (6, 12, 32, 32) dense layers, k = 32; "13M" parameters (Krešo et al. Tables 2 and 5)."""
    return DenseNet((6, 12, 32, 32), pretrained_cfg=default_cfgs["densenet169"], **kwargs)


__all__ = ["DenseBlock", "DenseLayer", "DenseNet", "Transition"]
