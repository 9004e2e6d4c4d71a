"""DeepLabv3 (Chen et al., arXiv 1706.05587): a dilated ResNet and Atrous Spatial Pyramid Pooling with image-level
features (Sec. 3.3, Fig. 5), a peer system compared with DLA on equal terms.

ASPP: one 1x1 and three 3x3 convolutions with rates ``(6, 12, 18)`` at output stride 16 (doubled at 8), and
the image-level branch (global average pooling, 1x1 convolution, BatchNorm, bilinear up-sampling), all with
256 filters, BatchNorm and ReLU; concatenated, a 1x1 projection to 256, then the 1x1 logits, up-sampled to
the input size. ``head="torchvision"`` adds the 3x3 convolution-BN-ReLU that torchvision's model places
before the logits (so its ``deeplabv3_resnet*`` files load: same keys), ``head="paper"`` (the default) is
the paper's. Module names follow torchvision (``backbone``, ``classifier.0.convs``, ``classifier.0.project``).

Going deeper (Sec. 3.2, Fig. 3, Tables 1-3): ``cascade=n`` appends block5 ... block(4+n), replicas of block4
(same bottlenecks, multi-grid unit rates too), each doubling the rate where it would otherwise stride, so that
``output_stride=16`` gives block4-7 the rates 2, 4, 8, 16. Beyond 32 (Table 1's 64-256) the replicas stride;
their shortcut is then the identity subsampled (a 1x1 max-pool), which has no weights, so any output stride
runs the same weights. The cascaded models of Tables 1-3 end with the 1x1 logits (``head="logits"``).

Output stride at evaluation (Sec. 4.2, Tables 4 and 6): ``set_output_stride(8)`` turns a model trained at 16
into the denser one (the backbone's last stride becomes dilation, the ASPP rates double); no weight changes.

Batch size 1: the image-level branch has one value per channel to normalise in training, where BatchNorm
cannot estimate statistics; it then uses its running statistics (and does not update them) for that batch
(``layers.norm.PooledBatchNorm``).
"""

import os
from collections.abc import Sequence
from typing import Union

import torch
from torch import Tensor, nn

from ..errors import DLAError
from ..layers.conv_bn_act import ConvBnAct
from ..layers.norm import PooledBatchNorm
from ..layers.upsample import resize_like
from ._builder import create_backbone
from ._pretrained import PretrainedCfg
from ._registry import register_model
from .resnet import Block, ResNet, set_conv_geometry, set_stage_geometry, stage_blocks, stage_rates, unit_rates


class ImagePooling(nn.Sequential):
    """The image-level features (Sec. 3.3): ``(N, C, H, W) -> (N, 256, H, W)``, constant over the map."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            PooledBatchNorm(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        return resize_like(super().forward(x), x)


class ASPP(nn.Module):
    """Atrous Spatial Pyramid Pooling with image-level features (Fig. 5): ``(N, C, h, w) -> (N, 256, h, w)``."""

    def __init__(self, in_channels: int, rates: Sequence[int], out_channels: int = 256) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            [ConvBnAct(in_channels, out_channels, 1)]
            + [ConvBnAct(in_channels, out_channels, 3, dilation=rate) for rate in rates]
            + [ImagePooling(in_channels, out_channels)]
        )
        self.project = ConvBnAct(out_channels * len(self.convs), out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.project(torch.cat([branch(x) for branch in self.convs], dim=1))

    def atrous_convs(self) -> list[nn.Conv2d]:
        """The 3x3 convolutions of the atrous branches (between the 1x1 branch and the image-level one)."""
        convs = []
        for branch in self.convs[1:-1]:
            conv = branch[0] if isinstance(branch, ConvBnAct) else branch
            if not isinstance(conv, nn.Conv2d):
                raise DLAError(f"an atrous ASPP branch starts with a 3x3 convolution, not a {type(conv).__name__}")
            convs.append(conv)
        return convs

    def set_rates(self, rates: Sequence[int]) -> None:
        """Dilate the three 3x3 branches by ``rates`` (doubled when the output stride halves)."""
        for conv, rate in zip(self.atrous_convs(), rates, strict=True):
            set_conv_geometry(conv, 1, rate)


def block_replica(unit: Block, channels: int, blocks: int) -> nn.Sequential:
    """A replica of block4 (Sec. 3.2): ``blocks`` units of ``channels`` in and out; the first one's shortcut
    subsamples the identity (a 1x1 max-pool, no weights) so that the replica may stride (output stride > 32)."""
    width = channels // unit.expansion
    first = unit(channels, width, downsample=nn.Sequential(nn.MaxPool2d(1, 1)))
    return nn.Sequential(first, *[unit(channels, width) for _ in range(blocks - 1)])


def aspp_rates(output_stride: int) -> tuple[int, int, int]:
    """(6, 12, 18) at output stride 16, doubled at 8 (Sec. 3.3); at 32, halved (not in the paper)."""
    if output_stride not in (8, 16, 32):
        raise DLAError(f"output_stride must be 8, 16 or 32, got {output_stride}")
    return tuple(rate * 16 // output_stride for rate in (6, 12, 18))  # type: ignore[return-value]


class DeepLabV3(nn.Module):
    """DeepLabv3 with ASPP on a dilated ResNet: ``(N, in_chans, H, W) -> (N, num_classes, H, W)`` logits.

    Built by ``build_deeplabv3`` (which looks the ResNet up and loads its weights); the registered
    constructors call it.

    Args:
        backbone: a built ``ResNet`` without classifier (``num_classes=0``), with the multi-grid unit rates of
            block4 (Sec. 3.2.1) if any; the replicas take the same.
        num_classes: output classes (21 for PASCAL VOC).
        output_stride: 16 (the paper's training) or 8; the backbone's last strides become dilation and
            the ASPP rates follow (``aspp_rates``). With ``cascade=n``, up to ``32 * 2**n`` (Table 1).
        cascade: replicas of block4 appended in cascade (0-3: up to block7, Sec. 3.2).
        head: ``"paper"`` (ASPP, then the 1x1 logits), ``"torchvision"`` (a 3x3 conv-BN-ReLU between them) or
            ``"logits"`` (the 1x1 logits on the last block: the cascaded models of Tables 1-3).
    """

    def __init__(
        self, backbone: ResNet, num_classes: int = 21, output_stride: int = 16, cascade: int = 0, head: str = "paper"
    ) -> None:
        super().__init__()
        if head not in ("paper", "torchvision", "logits"):
            raise DLAError(f"head must be 'paper', 'torchvision' or 'logits', got {head!r}")
        if not 0 <= cascade <= 3:
            raise DLAError(f"cascade is the number of replicas of block4 (0-3: up to block7), got {cascade}")
        self.backbone = backbone
        self.num_classes = num_classes
        self.block_name = backbone.block_name
        width = backbone.num_features
        unit = type(stage_blocks(backbone.layer4)[0])
        self.cascade = nn.Sequential(*[block_replica(unit, width, len(backbone.layer4)) for _ in range(cascade)])
        layers: list[nn.Module] = [] if head == "logits" else [ASPP(width, (6, 12, 18))]
        if head == "torchvision":
            layers += list(ConvBnAct(256, 256, 3))
        layers.append(nn.Conv2d(width if head == "logits" else 256, num_classes, 1))
        self.classifier = nn.Sequential(*layers)
        self.set_output_stride(output_stride)
        paper_name = f"DeepLabv3-{backbone.pretrained_cfg.paper_name}" + (f" block{4 + cascade}" if cascade else "")
        self.pretrained_cfg = PretrainedCfg(
            num_classes=num_classes,
            first_conv="backbone.conv1",
            classifier=f"classifier.{len(layers) - 1}",
            paper_name=paper_name,
            license="BSD-3-Clause",
        )

    def set_output_stride(self, output_stride: int) -> None:
        """Stride or dilate the backbone, the replicas and ASPP for ``output_stride`` (Sec. 3.1, 3.2, 3.3), in
        place and keeping the weights: train at 16, evaluate at 8 (Sec. 4.2)."""
        allowed = [8, 16, 32] + [32 * 2**i for i in range(1, len(self.cascade) + 1)]
        if output_stride not in allowed:
            raise DLAError(
                f"output_stride must be one of {allowed} with {len(self.cascade)} cascaded blocks, got {output_stride}"
            )
        aspp = self.classifier[0] if isinstance(self.classifier[0], ASPP) else None
        rates = aspp_rates(output_stride) if aspp is not None else ()
        self.backbone.set_output_stride(min(output_stride, 32))
        stride, rate = self.backbone.output_stride, stage_rates(self.backbone.output_stride)[3]
        for replica in self.replicas():  # Fig. 3: a replica strides until output_stride, then doubles the rate
            previous, step = rate, 1
            if stride < output_stride:
                stride, step = stride * 2, 2
            else:
                rate *= 2
            set_stage_geometry(replica, step, unit_rates(len(replica), rate, previous, self.backbone.multi_grid))
        if aspp is not None:
            aspp.set_rates(rates)
        self.output_stride = output_stride

    def replicas(self) -> list[nn.Sequential]:
        """block5 ... block(4 + cascade), in order."""
        return [replica for replica in self.cascade if isinstance(replica, nn.Sequential)]

    def forward(self, x: Tensor) -> Tensor:
        logits = self.classifier(self.cascade(self.backbone.forward_features(x)))
        return resize_like(logits, x)


def build_deeplabv3(
    backbone: str = "resnet101",
    multi_grid: Sequence[int] | None = None,
    pretrained_backbone: Union[bool, str, "os.PathLike[str]", None] = None,
    in_chans: int = 3,
    **kwargs,
) -> DeepLabV3:
    """A ``DeepLabV3`` on registered ResNet ``backbone`` (``"resnet101"``), built without classifier, with
    ``in_chans`` inputs and the ``multi_grid`` unit rates of block4 (e.g. ``(1, 2, 4)``, Sec. 3.2.1);
    ``pretrained_backbone`` (``True``, a path or a URL) loads its ImageNet weights (torchvision's files).
    ``kwargs`` go to ``DeepLabV3`` (``num_classes``, ``output_stride``, ``cascade``, ``head``)."""
    resnet = create_backbone(
        backbone, ResNet, "DeepLabv3", "resnet101", pretrained_backbone, num_classes=0, in_chans=in_chans, multi_grid=multi_grid
    )
    return DeepLabV3(resnet, **kwargs)


@register_model
def deeplabv3_resnet50(**kwargs) -> DeepLabV3:
    """DeepLabv3 with ResNet-50 (Table 1-3 ablations)."""
    return build_deeplabv3("resnet50", **kwargs)


@register_model
def deeplabv3_resnet101(**kwargs) -> DeepLabV3:
    """DeepLabv3 with ResNet-101 (Tables 5-7: the ASPP model); 58.04M parameters with 21 classes."""
    return build_deeplabv3("resnet101", **kwargs)


@register_model
def deeplabv3_cascade_resnet50(cascade: int = 3, **kwargs) -> DeepLabV3:
    """DeepLabv3 going deeper: ResNet-50 with block5-7 in cascade and the 1x1 logits (Tables 1, 2)."""
    return build_deeplabv3("resnet50", cascade=cascade, head="logits", **kwargs)


@register_model
def deeplabv3_cascade_resnet101(cascade: int = 3, **kwargs) -> DeepLabV3:
    """DeepLabv3 going deeper: ResNet-101 with block5-7 (Tables 2-4; the best has Multi_Grid (1, 2, 1))."""
    return build_deeplabv3("resnet101", cascade=cascade, head="logits", **kwargs)


__all__ = ["ASPP", "DeepLabV3", "ImagePooling", "aspp_rates", "block_replica", "build_deeplabv3"]
