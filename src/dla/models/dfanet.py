"""DFANet (Li, Xiong, Fan and Sun, CVPR 2019): a cascade of lightweight Xception backbones with sub-network
and sub-stage aggregation and a decoder fusing high- and low-level features (Sec. 3, Fig. 3), a peer system
compared with DLA on equal terms.

Backbone (Table 1, Sec. 3.3): ``conv1``, a 3x3 convolution with 8 filters and stride 2, then the stages
``enc2``, ``enc3``, ``enc4`` of 4, 6 and 4 Xception blocks, 48/96/192 channels wide for Xception A and 32/64/128
for B, each stage halving the resolution in its first block (strides 4, 8, 16). A block is Table 1's bracket:
three 3x3 depthwise separable convolutions of ``width / 4``, ``width / 4`` and ``width`` filters, the first
strided, with a residual shortcut, itself a strided separable convolution where the shape changes ("3x3 means
a depthwise separable convolution"; this, not a 1x1 one, brings the B rows within 10% of Tables 3-5). The FC
attention at the tail keeps the ImageNet classifier: global pooling, ``fc`` to 1000 classes, a 1x1
convolution back to the stage's width (with BatchNorm), and the vector, squashed by a sigmoid, scales the
features channel by channel: the channel-wise attention of SE-Net and EncNet, which the paper cites as its
model (Sec. 2). The paper names no activation; a ReLU there (the public re-implementations' choice) leaves
the gate unbounded, and three cascaded backbones then multiply the features up: trained with the CamVid CPU
recipe, the loss rose from 160 to 1200 in the first epoch.

Aggregation: backbone ``n > 1`` has no ``conv1``; its input is the previous backbone's attended output,
up-sampled to the previous ``enc2`` map's size (sub-network aggregation, Sec. 3.2), and each of its stages
starts from the concatenation of its own previous stage's output with the same stage's output in backbone
``n - 1`` (sub-stage aggregation, Eq. 1 and 2), so stage ``i`` of backbone ``n`` runs at half the
resolution of stage ``i`` of backbone ``n - 1``. Only the first block of a stage sees the concatenation.

Decoder (Sec. 3.3, Table 4): with ``high_level`` (HL) each backbone's attended output is scored by a 3x3
convolution, the scores are summed at the first backbone's stride 16; without it the last backbone's output is
scored by a 1x1 convolution and up-sampled directly (Table 3). With ``low_level`` (LL) each backbone's
``enc2`` output is scored by a 3x3 convolution and the scores are summed with the high-level ones at stride 4.
The sum is up-sampled to the input size. Every fusion up-samples to the other map's size, so any input size
works.

The paper's figures: multiply-adds as counted by ``dla.complexity`` match Tables 2-5 within 10%; its "Params"
column is read as megabytes of float32 weights, four bytes per parameter (DFANet A: 7.8 MB, 1.95M
parameters): every row then fits within 10%, whereas read as parameter counts they are all ~4.2 times the
model's, and the multiply-adds leave no room for the difference (``docs/dfanet.md``, with the table; the
figures are in ``models._paper``).

Batch size 1: the FC attention has one value per channel to normalise in training; its BatchNorm then uses its
running statistics (``layers.norm.PooledBatchNorm``). The convolution maps need more than one position: the
last backbone's ``enc4`` runs at stride ``2 ** (3 + num_backbones)`` (64 for DFANet's three), so a training
batch of one image must be larger than that on a side (65x65 trains; 64x64 leaves that map 1x1 and BatchNorm
raises: running statistics stand in for a pooled map's, not for a convolution map's).
"""

import os
from collections.abc import Sequence
from functools import partial
from typing import Union

import torch
from torch import Tensor, nn

from ..errors import DLAError
from ..layers.conv_bn_act import ConvBnAct
from ..layers.norm import PooledBatchNorm
from ..layers.upsample import resize_like
from ..layers.weight_init import init_conv_bn
from ._features import Backbone, FeatureInfo, FeatureLevel, Levels
from ._pretrained import PretrainedCfg, load_pretrained
from ._registry import register_model

XCEPTION_A = (48, 96, 192)  # Table 1: widths of enc2, enc3, enc4
XCEPTION_B = (32, 64, 128)
DEPTHS = (4, 6, 4)  # Table 1: blocks of enc2, enc3, enc4
STEM_WIDTH = 8  # Table 1: conv1


def _variant(widths: Sequence[int]) -> str:
    return {tuple(XCEPTION_A): "A", tuple(XCEPTION_B): "B"}.get(tuple(widths), str(tuple(widths)))


def _paper_name(variant: str, num_backbones: int, high_level: bool, low_level: bool, fc_attention: bool) -> str:
    """Tables 2-5's names: "DFANet A", "Backbone A x3+HL", "Xception B", ..."""
    if (num_backbones, high_level, low_level, fc_attention) == (3, True, True, True):
        return f"DFANet {variant}"
    name = f"{'Backbone' if fc_attention else 'Xception'} {variant}" + (f" x{num_backbones}" if num_backbones > 1 else "")
    return name + ("+HL" if high_level else "") + ("+LL" if low_level else "")


class SeparableConv2d(nn.Module):
    """A 3x3 depthwise convolution, a 1x1 pointwise one, BatchNorm and optionally ReLU (Table 1's "3x3").

    Shapes: ``(N, in_channels, H, W) -> (N, out_channels, ceil(H / stride), ceil(W / stride))``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, act: bool = True) -> None:
        super().__init__()
        self.conv_dw = nn.Conv2d(in_channels, in_channels, 3, stride, padding=1, groups=in_channels, bias=False)
        self.conv_pw = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = nn.ReLU(inplace=True) if act else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv_pw(self.conv_dw(x))))


class XceptionBlock(nn.Module):
    """Table 1's bracket: separable convolutions to ``width / 4``, ``width / 4``, ``width`` (the first strided)
    and a residual shortcut, a strided separable convolution where the shape changes; ReLU after the sum."""

    def __init__(self, in_channels: int, width: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = SeparableConv2d(in_channels, width // 4, stride)
        self.conv2 = SeparableConv2d(width // 4, width // 4)
        self.conv3 = SeparableConv2d(width // 4, width, act=False)
        self.shortcut = (
            SeparableConv2d(in_channels, width, stride, act=False) if stride != 1 or in_channels != width else nn.Identity()
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.conv3(self.conv2(self.conv1(x))) + self.shortcut(x))


def encoder_stage(in_channels: int, width: int, depth: int) -> nn.Sequential:
    """``depth`` blocks of ``width`` channels, the first halving the resolution (``enc2``-``enc4`` of Table 1)."""
    return nn.Sequential(XceptionBlock(in_channels, width, 2), *[XceptionBlock(width, width) for _ in range(depth - 1)])


class FCAttention(nn.Module):
    """The FC attention (Sec. 3.3): the ImageNet ``fc`` on the pooled features, a 1x1 convolution back to
    ``channels`` (BatchNorm, sigmoid), and the ``(N, channels, 1, 1)`` vector scales the features channel-wise.

    Shapes: ``(N, channels, h, w) -> (N, channels, h, w)``.
    """

    def __init__(self, channels: int, num_imagenet_classes: int = 1000) -> None:
        super().__init__()
        self.fc = nn.Linear(channels, num_imagenet_classes)
        self.conv = nn.Conv2d(num_imagenet_classes, channels, 1, bias=False)
        self.bn = PooledBatchNorm(channels)
        self.gate = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        encoding = self.fc(x.mean(dim=(2, 3)))[:, :, None, None]
        return x * self.gate(self.bn(self.conv(encoding)))


def _concat(previous: Tensor, x: Tensor) -> Tensor:
    """Sub-stage aggregation (Eq. 1): ``x`` and the previous backbone's map of the same stage, concatenated."""
    return torch.cat([x, previous], dim=1)


class XceptionBackbone(Backbone):
    """Modified Xception A or B (Table 1) with the FC attention: Table 2's "Backbone" (its "Xception" without).

    The first backbone (``cascaded=False``) has ``conv1``; a cascaded one starts from the previous backbone
    and its stages from concatenations (Eq. 1), so their first blocks are wider.

    Levels (``feature_info``, ``forward_intermediates``): the first backbone's ``conv1``, ``enc2``, ``enc3``,
    ``enc4`` at ``H / 2, H / 4, H / 8, H / 16`` and the attended ``enc4`` (the backbone's output, alike in
    shape); a cascaded one's ``enc2``, ``enc3``, ``enc4`` and attended ``enc4`` at ``H / 8, H / 16, H / 32,
    H / 32``, computed from the previous attended output, up-sampled to ``H / 4``, and the previous
    backbone's three stage outputs (``previous``).
    """

    def __init__(self, widths: Sequence[int], in_chans: int = 3, cascaded: bool = False, fc_attention: bool = True) -> None:
        super().__init__()
        c2, c3, c4 = widths
        self.widths = tuple(widths)
        self.fc_attention = fc_attention
        if cascaded:
            stage_inputs = (c4 + c2, c2 + c3, c3 + c4)
            stem: list[FeatureLevel] = []
        else:
            self.conv1 = ConvBnAct(in_chans, STEM_WIDTH, 3, stride=2)
            stage_inputs = (STEM_WIDTH, c2, c3)
            stem = [FeatureLevel(num_chs=STEM_WIDTH, reduction=2, module="conv1")]
        self.enc2 = encoder_stage(stage_inputs[0], c2, DEPTHS[0])
        self.enc3 = encoder_stage(stage_inputs[1], c3, DEPTHS[1])
        self.enc4 = encoder_stage(stage_inputs[2], c4, DEPTHS[2])
        self.attention = FCAttention(c4) if fc_attention else nn.Identity()
        reductions = (8, 16, 32, 32) if cascaded else (4, 8, 16, 16)
        self.feature_info = FeatureInfo(
            stem
            + [
                FeatureLevel(num_chs=c, reduction=r, module=name)
                for c, r, name in zip((c2, c3, c4, c4), reductions, ("enc2", "enc3", "enc4", "attention"), strict=True)
            ]
        )
        self.pretrained_cfg = PretrainedCfg(
            first_conv="conv1.0", classifier="attention", paper_name=f"Xception {_variant(widths)}"
        )
        init_conv_bn(self)

    def levels(self, previous: Sequence[Tensor] | None = None) -> Levels:
        """The levels (``Levels``, shapes in the class docstring): ``conv1`` and the stages, or, cascaded (with
        ``previous``, the previous backbone's ``enc2``-``enc4`` maps), each stage after the concatenation with
        ``previous[i]``; then the FC attention, whose map ``forward_features`` gives."""
        stages: Levels = [(self.enc2,), (self.enc3,), (self.enc4,)]
        if previous is None:
            stages = [(self.conv1,)] + stages
        else:
            stages = [(partial(_concat, p), *stage) for p, stage in zip(previous, stages, strict=True)]
        return stages + [(self.attention,)]

    def forward(self, x: Tensor, previous: Sequence[Tensor] | None = None) -> Tensor:
        return self.forward_features(x, previous=previous)


def _fuse(scorers: nn.ModuleList, maps: Sequence[Tensor]) -> Tensor:
    """Each map scored by its convolution and up-sampled to the first map's size, summed."""
    scores = [resize_like(score(x), maps[0]) for score, x in zip(scorers, maps, strict=True)]
    return sum(scores[1:], scores[0])


class Decoder(nn.Module):
    """The decoder of Fig. 3 and Table 4: class scores of the high-level maps (3x3 convolutions of every
    backbone's attended output with ``high_level``, else a 1x1 one of the last backbone's), plus, with
    ``low_level``, 3x3 convolutions of every backbone's ``enc2`` output, summed at the first one's size.

    Shapes: backbone ``n``'s (from 0) high-level map ``(N, high_channels, H / 2**(4 + n), W / 2**(4 + n))`` and
    low-level map ``(N, low_channels, H / 2**(2 + n), W / 2**(2 + n))`` -> ``(N, num_classes, H / 4, W / 4)``
    (``H / 16``, ``W / 16`` without ``low_level``).
    """

    def __init__(
        self,
        high_channels: int,
        low_channels: int,
        num_backbones: int,
        num_classes: int,
        high_level: bool = True,
        low_level: bool = True,
    ) -> None:
        super().__init__()
        if high_level:
            self.high = nn.ModuleList([nn.Conv2d(high_channels, num_classes, 3, padding=1) for _ in range(num_backbones)])
        else:
            self.high = nn.ModuleList([nn.Conv2d(high_channels, num_classes, 1)])
        self.low = nn.ModuleList(
            [nn.Conv2d(low_channels, num_classes, 3, padding=1) for _ in range(num_backbones if low_level else 0)]
        )

    def forward(self, highs: list[Tensor], lows: list[Tensor]) -> Tensor:
        scores = _fuse(self.high, highs[-len(self.high) :])
        if len(self.low):
            scores = resize_like(scores, lows[0]) + _fuse(self.low, lows)
        return scores


class DFANet(nn.Module):
    """DFANet: aggregated Xception backbones and the decoder (Fig. 3).

    Built by ``build_dfanet`` (which builds the backbones and loads the first one's weights); the registered
    constructors call it.

    Args:
        backbone: the first, ImageNet-pretrainable ``XceptionBackbone`` (its learning rate is the one
            ``optim.backbone_lr_factor`` scales).
        cascade: backbones 2 to ``num_backbones`` (``cascaded=True``: their first blocks take concatenations;
            they start from scratch).
        num_classes: output classes (19 for Cityscapes).
        high_level: fuse every backbone's high-level output (Table 4's "HL").
        low_level: fuse every backbone's ``enc2`` output (Table 4's "LL").

    Shapes: ``(N, in_chans, H, W) -> (N, num_classes, H, W)`` logits for any ``H, W``.
    """

    def __init__(
        self,
        backbone: XceptionBackbone,
        cascade: Sequence[XceptionBackbone],
        num_classes: int = 19,
        high_level: bool = True,
        low_level: bool = True,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.block_name = "xception"
        self.backbone = backbone
        self.cascade = nn.ModuleList(cascade)
        widths = backbone.widths
        self.decoder = Decoder(widths[2], widths[0], 1 + len(cascade), num_classes, high_level, low_level)
        key = (_variant(widths), 1 + len(cascade), high_level, low_level, backbone.fc_attention)
        self.pretrained_cfg = PretrainedCfg(
            num_classes=num_classes,
            first_conv="backbone.conv1.0",
            classifier="decoder",
            paper_name=_paper_name(*key),
        )

    def cascaded_backbones(self) -> list[XceptionBackbone]:
        """Backbones 2 to ``num_backbones``, in order."""
        return [backbone for backbone in self.cascade if isinstance(backbone, XceptionBackbone)]

    def forward(self, x: Tensor) -> Tensor:
        levels = self.backbone.forward_intermediates(x, indices=4, intermediates_only=True)  # enc2-enc4, attended
        highs, lows = [levels[3]], [levels[0]]
        for backbone in self.cascaded_backbones():
            levels = backbone.forward_intermediates(
                resize_like(levels[3], levels[0]), intermediates_only=True, previous=levels[:3]
            )
            highs.append(levels[3])
            lows.append(levels[0])
        return resize_like(self.decoder(highs, lows), x)


def build_dfanet(
    widths: Sequence[int] = XCEPTION_A,
    num_backbones: int = 3,
    fc_attention: bool = True,
    in_chans: int = 3,
    output_stride: int = 32,
    pretrained_backbone: Union[bool, str, "os.PathLike[str]", None] = None,
    **kwargs,
) -> DFANet:
    """A ``DFANet`` of ``num_backbones`` (1 to 4, Table 3's "xN"; the paper's DFANet has 3) Xception backbones
    of ``widths`` (``XCEPTION_A`` (48, 96, 192) or ``XCEPTION_B`` (32, 64, 128) for ``enc2``-``enc4``), with the
    FC attention at each one's tail (Table 2: "Backbone" with, "Xception" without). ``pretrained_backbone``: a
    path or URL of a state dict of the first backbone (Xception A or B with its ImageNet ``attention.fc``); no
    weights are published, so ``True`` raises. Only ``output_stride=32``: resolution is recovered by the
    decoder, not by dilation. ``kwargs`` go to ``DFANet`` (``num_classes``, ``high_level``, ``low_level``)."""
    if output_stride != 32:
        raise DLAError(
            f"DFANet recovers resolution with its decoder, not with dilation: output_stride must stay 32, got {output_stride}"
        )
    if not 1 <= num_backbones <= 4:
        raise DLAError(f"num_backbones must be 1 to 4 (Table 3), got {num_backbones}")
    backbone = XceptionBackbone(widths, in_chans, fc_attention=fc_attention)
    if pretrained_backbone:
        load_pretrained(backbone, pretrained_backbone)
    cascade = [XceptionBackbone(widths, cascaded=True, fc_attention=fc_attention) for _ in range(num_backbones - 1)]
    return DFANet(backbone, cascade, **kwargs)


@register_model
def dfanet_a(**kwargs) -> DFANet:
    """DFANet A (Tables 4, 5): three Xception A backbones, HL and LL; ``num_backbones``, ``high_level``,
    ``low_level`` and ``fc_attention`` give the ablations of Tables 2-4. DFANet A' is this model at 512x1024."""
    return build_dfanet(XCEPTION_A, **kwargs)


@register_model
def dfanet_b(**kwargs) -> DFANet:
    """DFANet B (Tables 4, 5): three Xception B backbones, HL and LL; the same ablation arguments as ``dfanet_a``."""
    return build_dfanet(XCEPTION_B, **kwargs)


__all__ = [
    "DFANet",
    "Decoder",
    "FCAttention",
    "SeparableConv2d",
    "XceptionBackbone",
    "XceptionBlock",
    "build_dfanet",
    "encoder_stage",
]
