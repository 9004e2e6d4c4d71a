"""Deep Layer Aggregation classification networks (Sec. 4.1, Table 1, Table 2, App. A).

Six stages ("levels" 0-5), each halving the resolution but the first:

- level 0: a 7x7 convolution (``base_layer``) and a 3x3 one, at the input resolution;
- level 1: a strided 3x3 convolution. Sec. 4.1 calls stages 1-2 "a basic block"; the authors' published
  networks use one convolution-BN-ReLU each, which is what their weights fit;
- levels 2-5: one HDA tree each (Eq. 2, Fig. 2f) of the depth Table 1 gives; levels 3-5 also aggregate
  their input at the root, the IDA across stages (Eq. 1 combined with Eq. 2, Sec. 4.1);

then global average pooling and a linear classifier, stored as a 1x1 convolution (``fc``) as in the
authors' checkpoints. Pooling adapts to the input size, so any input of at least 32 pixels works.
"""

from collections.abc import Sequence
from functools import partial

import torch
from torch import Tensor, nn

from ..aggregation import HDA
from ..errors import DLAError
from ..layers.blocks import BasicBlock, BlockFactory, Bottleneck, SplitBlock, block_name
from ..layers.checkpoint import checkpointed
from ..layers.classifier import create_classifier
from ..layers.conv_bn_act import ConvBnAct
from ..layers.weight_init import init_conv_bn
from ._features import Backbone, FeatureInfo, FeatureLevel, Levels
from ._pretrained import PretrainedCfg
from ._registry import register_model


def _conv_level(in_channels: int, out_channels: int, num_convs: int, stride: int) -> nn.Sequential:
    """Levels 0 and 1: ``num_convs`` 3x3 convolution-BN-ReLU, flat (keys ``0, 1, 3, 4, ...``), the first strided."""
    layers: list[nn.Module] = []
    for i in range(num_convs):
        layers.extend(ConvBnAct(in_channels if i == 0 else out_channels, out_channels, 3, stride if i == 0 else 1))
    return nn.Sequential(*layers)


def _level_strides(output_stride: int) -> list[tuple[int, int]]:
    """(stride, dilation) of levels 2-5: below output stride 32 the last levels trade stride for dilation."""
    if output_stride not in (8, 16, 32):
        raise DLAError(f"output_stride must be 8, 16 or 32, got {output_stride}")
    reduction, dilation, strides = 2, 1, []
    for _ in range(4):
        if reduction < output_stride:
            reduction *= 2
            strides.append((2, dilation))
        else:
            dilation *= 2
            strides.append((1, dilation))
    return strides


class DLA(Backbone):
    """A DLA classification network.

    Args:
        levels: six numbers: convolutions in levels 0-1, then the HDA depth of levels 2-5 (Table 1's ``d``).
        channels: six output widths, one per level (Table 1's ``n``).
        block: the convolutional block of the trees (Fig. 9), ``block(in, out, stride=, dilation=)``.
        residual_root: Eq. 4 nodes instead of Eq. 3 (App. A: for networks over 100 layers).
        num_classes: classifier outputs; 0 for none (``forward`` then returns pooled features).
        in_chans: input channels.
        output_stride: 32, 16 or 8 (dilation replaces the striding of the last levels).
        drop_rate: dropout before the classifier.
        pretrained_cfg: the published weights of this variant, if any.

    Shapes: ``(N, in_chans, H, W) -> (N, num_classes)``; level ``i`` has ``channels[i]`` channels at
    ``ceil(H / reduction_i)`` with reductions ``1, 2, 4, 8, 16, 32`` (capped at ``output_stride``).
    """

    def __init__(
        self,
        levels: Sequence[int],
        channels: Sequence[int],
        block: BlockFactory = BasicBlock,
        residual_root: bool = False,
        num_classes: int = 1000,
        in_chans: int = 3,
        output_stride: int = 32,
        drop_rate: float = 0.0,
        pretrained_cfg: PretrainedCfg | None = None,
    ) -> None:
        super().__init__()
        if len(levels) != 6 or len(channels) != 6:
            raise DLAError(f"levels and channels need six entries each, got {list(levels)} and {list(channels)}")
        self.num_classes = num_classes
        self.channels = tuple(channels)
        self.num_features = channels[-1]
        self.block_name = block_name(block)
        self.pretrained_cfg = pretrained_cfg or PretrainedCfg()
        (s2, d2), (s3, d3), (s4, d4), (s5, d5) = _level_strides(output_stride)

        def tree(depth: int, in_channels: int, out_channels: int, stride: int, dilation: int, aggregate_input: bool) -> HDA:
            return HDA(depth, block, in_channels, out_channels, stride, dilation, aggregate_input, root_residual=residual_root)

        self.base_layer = ConvBnAct(in_chans, channels[0], kernel_size=7)
        self.level0 = _conv_level(channels[0], channels[0], levels[0], stride=1)
        self.level1 = _conv_level(channels[0], channels[1], levels[1], stride=2)
        self.level2 = tree(levels[2], channels[1], channels[2], s2, d2, aggregate_input=False)
        self.level3 = tree(levels[3], channels[2], channels[3], s3, d3, aggregate_input=True)
        self.level4 = tree(levels[4], channels[3], channels[4], s4, d4, aggregate_input=True)
        self.level5 = tree(levels[5], channels[4], channels[5], s5, d5, aggregate_input=True)
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(drop_rate)
        self.fc = create_classifier(self.num_features, num_classes, conv=True)
        self.flatten = nn.Flatten(1)
        self.grad_checkpointing = False

        reductions = [1, 2] + [min(2 ** (i + 2), output_stride) for i in range(4)]
        self.feature_info = FeatureInfo(
            [
                FeatureLevel(num_chs=c, reduction=r, module=f"level{i}")
                for i, (c, r) in enumerate(zip(channels, reductions, strict=True))
            ]
        )
        init_conv_bn(self, skip=(self.fc,))

    def filter_checkpoint(self, state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
        """timm's layout of the authors' weights (its Hugging Face Hub copies, ``timm/dla34.in1k``) to the authors'.

        timm builds no ``project`` in trees deeper than 1, whose output the authors' code never uses (``HDA``), so
        its files lack them: a file that lacks every one of them gets this model's own, which no output depends on
        (a file lacking only some is left to fail the strict load). A classifier stored as a linear layer,
        ``(classes, C)``, is viewed as the 1x1 convolution ``fc`` is, ``(classes, C, 1, 1)``. All other keys are the
        same in both layouts; the authors' layout passes through unchanged.
        """
        unused = {
            f"{name}.project.{key}": value
            for name, tree in self.named_modules()
            if isinstance(tree, HDA) and tree.depth > 1 and tree.project is not None
            for key, value in tree.project.state_dict().items()
        }
        if unused and not any(key in state_dict for key in unused):
            state_dict = {**state_dict, **unused}
        fc = state_dict.get("fc.weight")
        if fc is not None and fc.dim() == 2:
            state_dict = {**state_dict, "fc.weight": fc[:, :, None, None]}
        return state_dict

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier by a fresh one with ``num_classes`` outputs (0: none)."""
        self.num_classes = num_classes
        self.fc = create_classifier(self.num_features, num_classes, conv=True)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Checkpoint the HDA trees (levels 2-5) in training: their activations are recomputed in the backward
        pass instead of stored (``dla.layers.checkpoint``), for less memory at about one more forward pass of
        the trees. Gradients and BatchNorm statistics are those of the plain model; state-dict keys are
        unchanged (the trees are wrapped at call time, not replaced)."""
        self.grad_checkpointing = enable

    def levels(self) -> Levels:
        """The six levels (``Levels``): ``base_layer`` and level 0, then levels 1-5; level ``i`` is ``(N,
        channels[i], H / reduction_i, W / reduction_i)`` and ``forward_features`` gives level 5's map, before
        pooling. With ``set_grad_checkpointing()``, in training with gradients on, the trees run checkpointed."""
        checkpointing = self.grad_checkpointing and self.training and torch.is_grad_enabled()
        trees = [getattr(self, f"level{i}") for i in range(2, 6)]
        return [(self.base_layer, self.level0), (self.level1,)] + [(checkpointed(t) if checkpointing else t,) for t in trees]

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """``(N, C, h, w) -> (N, num_classes)``, or the pooled ``(N, C)`` with ``pre_logits``."""
        x = self.global_pool(x)
        if pre_logits:
            return self.flatten(x)
        return self.flatten(self.fc(self.drop(x)))

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


def _cfg(name: str, file_hash: str, paper_name: str) -> PretrainedCfg:
    """The authors' ImageNet weights of ``name``: timm's copy on the Hugging Face Hub first, their own URL second."""
    return PretrainedCfg(
        url=f"http://dl.yf.io/dla/models/imagenet/{name}-{file_hash}.pth",
        hash_prefix=file_hash,
        hf_hub_id=f"timm/{name}.in1k",
        license="BSD-3-Clause",
        paper_name=paper_name,
        origin="https://github.com/ucbdrive/dla (ImageNet-1k, the authors' training)",
    )


default_cfgs = {
    "dla34": _cfg("dla34", "ba72cf86", "DLA-34"),
    "dla46_c": _cfg("dla46_c", "2bfd52c3", "DLA-46-C"),
    "dla46x_c": _cfg("dla46x_c", "d761bae7", "DLA-X-46-C"),
    "dla60x_c": _cfg("dla60x_c", "b870c45c", "DLA-X-60-C"),
    "dla60": _cfg("dla60", "24839fc4", "DLA-60"),
    "dla60x": _cfg("dla60x", "d15cacda", "DLA-X-60"),
    "dla102": _cfg("dla102", "d94d9790", "DLA-102"),
    "dla102x": _cfg("dla102x", "ad62be81", "DLA-X-102"),
    "dla102x2": _cfg("dla102x2", "262837b6", "DLA-X-102 64"),
    "dla169": _cfg("dla169", "0914e092", "DLA-169"),
}

_COMPACT = (16, 32, 64, 64, 128, 256)
_WIDE = (16, 32, 128, 256, 512, 1024)


@register_model
def dla34(**kwargs) -> DLA:
    """DLA-34 (Table 1): basic blocks, the counterpart of ResNet-34."""
    return DLA((1, 1, 1, 2, 2, 1), (16, 32, 64, 128, 256, 512), BasicBlock, pretrained_cfg=default_cfgs["dla34"], **kwargs)


@register_model
def dla46_c(**kwargs) -> DLA:
    """DLA-46-C (Table 2; "DLA-48-C" in Table 1): compact, bottleneck blocks."""
    return DLA((1, 1, 1, 2, 2, 1), _COMPACT, Bottleneck, pretrained_cfg=default_cfgs["dla46_c"], **kwargs)


@register_model
def dla46x_c(**kwargs) -> DLA:
    """DLA-X-46-C (Table 2; "DLA-X-48-C" in Table 1): compact, split blocks."""
    return DLA((1, 1, 1, 2, 2, 1), _COMPACT, SplitBlock, pretrained_cfg=default_cfgs["dla46x_c"], **kwargs)


@register_model
def dla60x_c(**kwargs) -> DLA:
    """DLA-X-60-C (Tables 1, 2): compact, split blocks."""
    return DLA((1, 1, 1, 2, 3, 1), _COMPACT, SplitBlock, pretrained_cfg=default_cfgs["dla60x_c"], **kwargs)


@register_model
def dla60(**kwargs) -> DLA:
    """DLA-60 (Table 1): bottleneck blocks, the counterpart of ResNet-50."""
    return DLA((1, 1, 1, 2, 3, 1), _WIDE, Bottleneck, pretrained_cfg=default_cfgs["dla60"], **kwargs)


@register_model
def dla60x(**kwargs) -> DLA:
    """DLA-X-60 (Table 1): split blocks, the counterpart of ResNeXt-50 32x4d."""
    return DLA((1, 1, 1, 2, 3, 1), _WIDE, SplitBlock, pretrained_cfg=default_cfgs["dla60x"], **kwargs)


@register_model
def dla102(**kwargs) -> DLA:
    """DLA-102 (Table 1): bottleneck blocks, residual nodes (Eq. 4), the counterpart of ResNet-101."""
    return DLA((1, 1, 1, 3, 4, 1), _WIDE, Bottleneck, residual_root=True, pretrained_cfg=default_cfgs["dla102"], **kwargs)


@register_model
def dla102x(**kwargs) -> DLA:
    """DLA-X-102 (Table 1): split blocks, residual nodes, the counterpart of ResNeXt-101 32x4d."""
    return DLA((1, 1, 1, 3, 4, 1), _WIDE, SplitBlock, residual_root=True, pretrained_cfg=default_cfgs["dla102x"], **kwargs)


@register_model
def dla102x2(**kwargs) -> DLA:
    """DLA-X-102 64 (App. A): split blocks of cardinality 64, twice the 3x3 channels, vs. ResNeXt-101 64x4d."""
    block = partial(SplitBlock, cardinality=64)
    return DLA((1, 1, 1, 3, 4, 1), _WIDE, block, residual_root=True, pretrained_cfg=default_cfgs["dla102x2"], **kwargs)


@register_model
def dla169(**kwargs) -> DLA:
    """DLA-169 (Table 1): bottleneck blocks, residual nodes, the counterpart of ResNet-152."""
    return DLA((1, 1, 2, 3, 5, 1), _WIDE, Bottleneck, residual_root=True, pretrained_cfg=default_cfgs["dla169"], **kwargs)
