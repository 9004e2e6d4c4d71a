"""Ladder-style DenseNet (Krešo, Šegvić, Krapac, ICCVW 2017): a DenseNet downsampling path, a context layer
and a lean ladder-style upsampling path of transition-up blocks (Sec. 3, Fig. 1).

Downsampling path: torchvision's DenseNet-121/169 (``self.backbone``, its keys, so ImageNet files load). Dense
block 4 is split into halves, DB4a and DB4b, by an extra 2x2 average pooling (``D``), so DB4b ends at 64x
subsampling; DB4b keeps its ImageNet filters (Sec. 3). The DenseNet makes the split itself
(``DenseNet.set_split_blocks``: the halves are two of its levels) and the upsampling path takes its skips and
the context's input from the DenseNet's ``forward_intermediates``. The added poolings round sizes up
(``ceil_mode``), so that small inputs keep at least one position at every level; torchvision's transitions
round down.

Context layer (Sec. 3): DB4b's maps go through DenseNet's own ``norm5`` and ReLU (the pre-activation of the
first convolution, ImageNet-trained), a 1x1 projection to 512 maps, then BN-ReLU-3x3 convolution with 128
filters at dilation 2. All new convolutions are pre-activation units, BN-ReLU-conv, as DenseNet's (Sec. 4).

Transition-up (TU, Sec. 3): the coarse input (128 maps) is bilinearly up-sampled to the skip's exact size,
the skip is projected by BN-ReLU-1x1 conv to the same 128 maps, the two are concatenated (the paper blends
by concatenation, not summation: "one projection, one concatenation and one 3x3 convolution", Sec. 1-3) and
blended by one BN-ReLU-3x3 conv back to 128 maps. The text gives the context's 128 maps and says that the
projection equalises the two inputs' widths; the whole upsampling path is therefore 128 maps wide. Skips come
from every dense block (DB1, DB2, DB3, DB4a): four TUs take the 64x context back to 4x, where a BN-ReLU-1x1
classifier predicts, bilinearly up-sampled to the input size.

Auxiliary loss (Sec. 5.1): a BN-ReLU-1x1 classifier on the context output, up-sampled to the input size; in
training ``forward`` returns ``AuxOutput(logits, aux_logits)`` and the engine weights them 0.7 / 0.3.

Table 1 variants: ``upsampling=False`` is the "DenseNet-121 32x" baseline (no DB4 split, the classifier on the
context output at 32x; no auxiliary head, its loss being the main one); ``aux=False`` the "single loss";
``split3=True`` the "split3+4" (DB3 also split by a pooling, a fifth TU, the context at 128x); ``context="spp"``
the "SPP" context, PSPNet's pyramid pooling (Zhao et al., Sec. 3.3) on the 512-map projection: average
pooling to 1x1, 2x2, 3x3 and 6x6 bins, BN-ReLU-1x1 conv to 128 maps each, bilinear up-sampling, concatenated
with the projection (1024 maps) and blended by BN-ReLU-3x3 conv to the context's 128 maps. The pooled maps
are normalised by ``layers.norm.PooledBatchNorm`` (the 1x1 bin of a single image has one value per channel).

Batch size 1: the convolution maps need more than one position each. DB4b, at 64x subsampling after the
transitions' rounding down, keeps two from 93 pixels on a side (173 with ``split3``, the context then at
128x), so a training batch of one image must be that large; a 92x92 image leaves DB4b 1x1 and BatchNorm raises.

Frozen BatchNorm (Table 4): ``freeze_bn=True`` keeps all BatchNorm layers in inference mode, as the paper
("we freeze all BatchNorm layers and put them in inference mode during training"), with fixed running
statistics and affine parameters that are not trained. The paper did so when fine-tuning a segmentation model
already trained at a lower resolution (its weights come through ``pretrained``), not from ImageNet weights.

Not in the paper's text: the widths of Fig. 1 (the figure is not in the text; see above), the SPP bins,
pre-activation classifiers. The paper gives no parameter or FLOP counts for the segmentation models.
"""

import os
from collections import OrderedDict
from collections.abc import Sequence
from typing import Union

import torch
from torch import Tensor, nn

from ..errors import DLAError
from ..layers.norm import PooledBatchNorm
from ..layers.upsample import resize_like
from ..layers.weight_init import init_conv_bn
from ._builder import create_backbone
from ._outputs import AuxOutput
from ._pretrained import PretrainedCfg
from ._registry import register_model
from .densenet import DenseNet

WIDTH = 128  # maps of the context output and of the whole upsampling path (Sec. 3)


class PreActConv(nn.Sequential):
    """BN, ReLU, convolution: DenseNet's unit order (Sec. 4): ``(N, C, H, W) -> (N, out_channels, H, W)``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        dilation: int = 1,
        bias: bool = False,
        norm: type[nn.BatchNorm2d] = nn.BatchNorm2d,
    ) -> None:
        super().__init__(
            OrderedDict(
                norm=norm(in_channels),
                relu=nn.ReLU(inplace=True),
                conv=nn.Conv2d(
                    in_channels, out_channels, kernel_size, padding=dilation * (kernel_size // 2), dilation=dilation, bias=bias
                ),
            )
        )


class Context(nn.Sequential):
    """The context layer (Sec. 3): 1x1 projection to 512, BN-ReLU-3x3 conv, 128 filters, rate 2.

    ``(N, C, h, w) -> (N, 128, h, w)``; the input is already normalised and rectified (``norm5``, ReLU).
    """

    def __init__(self, in_channels: int, width: int = 512, out_channels: int = WIDTH) -> None:
        super().__init__(
            OrderedDict(
                project=nn.Conv2d(in_channels, width, 1, bias=False),
                conv=PreActConv(width, out_channels, 3, dilation=2),
            )
        )


class PyramidLevel(nn.Sequential):
    """One SPP level: average pooling to ``bins x bins``, BN-ReLU-1x1 conv, up-sampling to the input's size.

    ``(N, C, h, w) -> (N, out_channels, h, w)``.
    """

    def __init__(self, in_channels: int, out_channels: int, bins: int) -> None:
        super().__init__(nn.AdaptiveAvgPool2d(bins), PreActConv(in_channels, out_channels, norm=PooledBatchNorm))

    def forward(self, x: Tensor) -> Tensor:
        return resize_like(super().forward(x), x)


class SPPContext(nn.Module):
    """PSPNet-style pyramid pooling in place of the context layer (Table 1, "SPP").

    ``(N, C, h, w) -> (N, 128, h, w)``: 1x1 projection to 512, four levels of 128 maps concatenated with it,
    BN-ReLU-3x3 conv to 128.
    """

    def __init__(self, in_channels: int, width: int = 512, out_channels: int = WIDTH, bins: Sequence[int] = (1, 2, 3, 6)) -> None:
        super().__init__()
        self.project = nn.Conv2d(in_channels, width, 1, bias=False)
        self.levels = nn.ModuleList([PyramidLevel(width, width // len(bins), b) for b in bins])
        self.blend = PreActConv(2 * width, out_channels, 3)

    def forward(self, x: Tensor) -> Tensor:
        x = self.project(x)
        return self.blend(torch.cat([x] + [level(x) for level in self.levels], dim=1))


class TransitionUp(nn.Module):
    """Transition-up (Sec. 3): blend the coarse path with a skip by one projection, one concatenation, one 3x3.

    ``(N, C, h, w), (N, S, H, W) -> (N, C, H, W)``; the coarse input is up-sampled to the skip's exact size.
    """

    def __init__(self, skip_channels: int, channels: int) -> None:
        super().__init__()
        self.project = PreActConv(skip_channels, channels)
        self.blend = PreActConv(2 * channels, channels, 3)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = resize_like(x, skip)
        return self.blend(torch.cat([x, self.project(skip)], dim=1))


def _paper_name(backbone: DenseNet, aux: bool, upsampling: bool, context: str, freeze_bn: bool) -> str:
    """The configuration's name in Tables 1 and 4 ("LadderDenseNet-169 4x split3+4")."""
    depth = backbone.pretrained_cfg.paper_name.rsplit("-", 1)[-1]
    if not upsampling:
        return f"DenseNet-{depth} 32x"
    labels = [
        (not aux, "single loss"),
        (3 in backbone.split_blocks, "split3+4"),
        (context == "spp", "SPP"),
        (freeze_bn, "frozen-BN"),
    ]
    return " ".join([f"LadderDenseNet-{depth} 4x"] + [label for wanted, label in labels if wanted])


class LadderDenseNet(nn.Module):
    """Ladder-style DenseNet: ``(N, in_chans, H, W) -> (N, num_classes, H, W)`` logits, for any ``H, W``.

    Built by ``build_ladder_densenet`` (which looks the DenseNet up, splits its blocks and loads its weights);
    the registered constructors call it.

    Args:
        backbone: a built ``DenseNet`` without classifier (``num_classes=0``), its blocks split as the variant
            wants (``set_split_blocks``): DB4 (Sec. 3), DB3 and DB4 ("split3+4"), none for the 32x baseline.
            Every level but the stem and the last is a skip; the last is the context's input.
        num_classes: output classes (19 for Cityscapes).
        aux: the auxiliary classifier on the context output (Sec. 5.1); in training ``forward`` then returns
            ``AuxOutput(logits, aux_logits)``, both at the input size.
        upsampling: ``False`` for Table 1's 32x baseline: no TUs, logits from the context output.
        context: ``"simple"`` (Sec. 3) or ``"spp"`` (pyramid pooling, Table 1).
        freeze_bn: keep all BatchNorm layers in inference mode and their parameters fixed (Table 4).
    """

    def __init__(
        self,
        backbone: DenseNet,
        num_classes: int = 19,
        aux: bool = True,
        upsampling: bool = True,
        context: str = "simple",
        freeze_bn: bool = False,
    ) -> None:
        super().__init__()
        if context not in ("simple", "spp"):
            raise DLAError(f"context must be 'simple' or 'spp', got {context!r}")
        self.backbone = backbone
        self.num_classes = num_classes
        self.block_name = backbone.block_name
        self.aux = aux and upsampling
        self.freeze_bn = freeze_bn
        self.skip_levels = range(1, len(backbone.feature_info.levels) - 1)  # DB1, DB2, DB3 (DB3a, DB3b), DB4a
        self.context_stride = backbone.feature_info.reduction(-1)
        context_block = SPPContext if context == "spp" else Context
        self.context = context_block(backbone.num_features)
        self.transitions_up = nn.ModuleList(
            [TransitionUp(c, WIDTH) for c in reversed(self.skip_channels())] if upsampling else []
        )
        self.logits = PreActConv(WIDTH, num_classes, bias=True)
        self.aux_logits = PreActConv(WIDTH, num_classes, bias=True) if self.aux else None
        heads = ("logits", "aux_logits") if self.aux else ("logits",)
        init_conv_bn(self.context)
        init_conv_bn(self.transitions_up)
        if freeze_bn:
            for m in self._norms():
                m.requires_grad_(False)
        self.pretrained_cfg = PretrainedCfg(
            num_classes=num_classes,
            first_conv="backbone.features.conv0",
            classifier=tuple(f"{h}.conv" for h in heads),
            paper_name=_paper_name(backbone, aux, upsampling, context, freeze_bn),
            license="",
        )
        self.train()

    def skip_channels(self) -> list[int]:
        """Widths of the skips, finest first: DB1, DB2, DB3 (DB3a, DB3b with ``split3``), DB4a."""
        return self.backbone.feature_info.select(self.skip_levels).channels()

    def _norms(self) -> list[nn.BatchNorm2d]:
        return [m for m in self.modules() if isinstance(m, nn.BatchNorm2d)]

    def train(self, mode: bool = True) -> "LadderDenseNet":
        """As ``nn.Module.train``; with ``freeze_bn`` the BatchNorm layers stay in inference mode."""
        super().train(mode)
        if self.freeze_bn:
            for m in self._norms():
                m.eval()
        return self

    def forward(self, x: Tensor) -> Tensor | AuxOutput:
        """Logits ``(N, num_classes, H, W)``; in training with ``aux``, ``AuxOutput(logits, aux_logits)``.

        The downsampling path (Fig. 1, top rail) gives the skips, finest first, and the deepest block's
        output after ``norm5`` and ReLU, ``(N, num_features, H / context_stride, W / context_stride)``; the
        TUs take the context back up the skips, coarsest first.
        """
        features, skips = self.backbone.forward_intermediates(x, indices=self.skip_levels)
        context = self.context(features)
        y = context
        # strict=False: the 32x baseline (upsampling=False) has no transition-up and leaves the skips unused
        for transition_up, skip in zip(self.transitions_up, reversed(skips), strict=False):
            y = transition_up(y, skip)
        logits = resize_like(self.logits(y), x)
        if self.aux and self.training and self.aux_logits is not None:
            return AuxOutput(logits, resize_like(self.aux_logits(context), x))
        return logits


def build_ladder_densenet(
    backbone: str = "densenet121",
    pretrained_backbone: Union[bool, str, "os.PathLike[str]", None] = None,
    in_chans: int = 3,
    output_stride: int = 32,
    upsampling: bool = True,
    split3: bool = False,
    **kwargs,
) -> LadderDenseNet:
    """A ``LadderDenseNet`` on registered DenseNet ``backbone`` (``"densenet121"`` or ``"densenet169"``), built
    without classifier with ``in_chans`` inputs and DB4 split by a pooling (also DB3 with ``split3``, Table
    1's "split3+4"; none with ``upsampling=False``, its 32x baseline); ``pretrained_backbone`` (``True``, a
    path or a URL) loads its ImageNet weights (torchvision's files, old key names included). Only
    ``output_stride=32``. ``kwargs`` go to ``LadderDenseNet`` (``num_classes``, ``aux``, ``context``,
    ``freeze_bn``)."""
    if output_stride != 32:
        raise DLAError(f"the Ladder DenseNet recovers resolution by upsampling: output_stride must be 32, got {output_stride}")
    if split3 and not upsampling:
        raise DLAError("split3 adds a transition-up: it needs upsampling=True")
    densenet = create_backbone(
        backbone, DenseNet, "Ladder DenseNet", "densenet121", pretrained_backbone, num_classes=0, in_chans=in_chans
    )
    densenet.set_split_blocks(((3, 4) if split3 else (4,)) if upsampling else ())
    return LadderDenseNet(densenet, upsampling=upsampling, **kwargs)


@register_model
def ladder_densenet121(**kwargs) -> LadderDenseNet:
    """LadderDenseNet-121 4x (Table 1: 72.82% mIoU on Cityscapes val at 1024x448; Table 3, from scratch);
    ``upsampling=False`` is Table 1's "DenseNet-121 32x", ``aux=False`` its "single loss"."""
    return build_ladder_densenet("densenet121", **kwargs)


@register_model
def ladder_densenet169(**kwargs) -> LadderDenseNet:
    """LadderDenseNet-169 4x, Fig. 1 (Table 1: 73.72% mIoU; Tables 4-6); ``split3=True`` and ``context="spp"``
    are Table 1's "split3+4" and "SPP", ``freeze_bn=True`` Table 4's "frozen-BN"."""
    return build_ladder_densenet("densenet169", **kwargs)


__all__ = ["Context", "LadderDenseNet", "PreActConv", "PyramidLevel", "SPPContext", "TransitionUp", "build_ladder_densenet"]
