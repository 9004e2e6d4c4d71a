"""DeepLabv3 (Chen et al., arXiv 1706.05587): a dilated ResNet and Atrous Spatial Pyramid Pooling with image-level
features (Sec. 3.3, Fig. 5), a peer system compared with DLA on equal terms.

ASPP: one 1x1 and three 3x3 convolutions with rates ``(6, 12, 18)`` at output stride 16 (doubled at 8), and
the image-level branch (global average pooling, 1x1 convolution, BatchNorm, bilinear up-sampling), all with
256 filters, BatchNorm and ReLU; concatenated, a 1x1 projection to 256, then the 1x1 logits, up-sampled to
the input size. ``head="torchvision"`` adds the 3x3 convolution-BN-ReLU that torchvision's model places
before the logits (so its ``deeplabv3_resnet*`` files load: same keys), ``head="paper"`` (the default) is
the paper's. Module names follow torchvision (``backbone``, ``classifier.0.convs``, ``classifier.0.project``).

Batch size 1: the image-level branch has one value per channel to normalise in training, where BatchNorm
cannot estimate statistics; it then uses its running statistics (and does not update them) for that batch.
"""

from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import DLAError
from ._pretrained import PretrainedCfg, load_pretrained
from ._registry import model_entrypoint, register_model
from .resnet import ResNet


class PooledBatchNorm(nn.BatchNorm2d):
    """BatchNorm of the image-level features: running statistics when a training batch has a single image."""

    def forward(self, x: Tensor) -> Tensor:
        if self.training and x.shape[0] * x.shape[2] * x.shape[3] == 1:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        return super().forward(x)


def _conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int = 1, rate: int = 1) -> nn.Sequential:
    padding = rate if kernel_size == 3 else 0
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, dilation=rate, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class ImagePooling(nn.Sequential):
    """The image-level features (Sec. 3.3): ``(N, C, H, W) -> (N, 256, H, W)``, constant over the map."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_channels, out_channels, 1, bias=False),
            PooledBatchNorm(out_channels), nn.ReLU(inplace=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(super().forward(x), size=x.shape[-2:], mode="bilinear", align_corners=False)


class ASPP(nn.Module):
    """Atrous Spatial Pyramid Pooling with image-level features (Fig. 5): ``(N, C, h, w) -> (N, 256, h, w)``."""

    def __init__(self, in_channels: int, rates: Sequence[int], out_channels: int = 256) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            [_conv_bn_relu(in_channels, out_channels)]
            + [_conv_bn_relu(in_channels, out_channels, 3, rate) for rate in rates]
            + [ImagePooling(in_channels, out_channels)]
        )
        self.project = _conv_bn_relu(out_channels * len(self.convs), out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.project(torch.cat([branch(x) for branch in self.convs], dim=1))


def aspp_rates(output_stride: int) -> Tuple[int, int, int]:
    """(6, 12, 18) at output stride 16, doubled at 8 (Sec. 3.3); at 32, halved (not in the paper)."""
    if output_stride not in (8, 16, 32):
        raise DLAError(f"output_stride must be 8, 16 or 32, got {output_stride}")
    return tuple(rate * 16 // output_stride for rate in (6, 12, 18))  # type: ignore[return-value]


class DeepLabV3(nn.Module):
    """DeepLabv3 with ASPP on a dilated ResNet: ``(N, in_chans, H, W) -> (N, num_classes, H, W)`` logits.

    Args:
        backbone: a registered ResNet name (``"resnet101"``).
        num_classes: output classes (21 for PASCAL VOC).
        output_stride: 16 (the paper's training) or 8; the backbone's last strides become dilation and
            the ASPP rates follow (``aspp_rates``).
        multi_grid: unit rates of the backbone's last stage (Sec. 3.2.1), e.g. ``(1, 2, 4)``.
        head: ``"paper"`` (ASPP, then the 1x1 logits) or ``"torchvision"`` (a 3x3 conv-BN-ReLU between them).
        pretrained_backbone: ``True``, a path or a URL of ImageNet weights for the ResNet (torchvision's files).
        in_chans: input channels.
    """

    def __init__(self, backbone: str = "resnet101", num_classes: int = 21, output_stride: int = 16,
                 multi_grid: Optional[Sequence[int]] = None, head: str = "paper",
                 pretrained_backbone: object = None, in_chans: int = 3) -> None:
        super().__init__()
        self.backbone = model_entrypoint(backbone)(num_classes=0, in_chans=in_chans, output_stride=output_stride,
                                                   multi_grid=multi_grid)
        if not isinstance(self.backbone, ResNet):
            raise DLAError(f"the DeepLabv3 backbone must be a ResNet (e.g. 'resnet101'), got {backbone!r}")
        if pretrained_backbone:
            load_pretrained(self.backbone, pretrained_backbone)
        if head not in ("paper", "torchvision"):
            raise DLAError(f"head must be 'paper' or 'torchvision', got {head!r}")
        self.num_classes = num_classes
        self.block_name = self.backbone.block_name
        width = self.backbone.num_features
        layers = [ASPP(width, aspp_rates(output_stride))]
        if head == "torchvision":
            layers += list(_conv_bn_relu(256, 256, 3))
        layers.append(nn.Conv2d(256, num_classes, 1))
        self.classifier = nn.Sequential(*layers)
        self.pretrained_cfg = PretrainedCfg(
            num_classes=num_classes, first_conv="backbone.conv1", classifier=f"classifier.{len(layers) - 1}",
            paper_name=f"DeepLabv3-{self.backbone.pretrained_cfg.paper_name}", license="BSD-3-Clause",
        )

    def forward(self, x: Tensor) -> Tensor:
        logits = self.classifier(self.backbone.forward_features(x))
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)


@register_model
def deeplabv3_resnet50(**kwargs) -> DeepLabV3:
    """DeepLabv3 with ResNet-50 (Table 1-3 ablations)."""
    return DeepLabV3("resnet50", **kwargs)


@register_model
def deeplabv3_resnet101(**kwargs) -> DeepLabV3:
    """DeepLabv3 with ResNet-101 (Tables 4-7: the paper's main model)."""
    return DeepLabV3("resnet101", **kwargs)


__all__ = ["ASPP", "DeepLabV3", "ImagePooling", "PooledBatchNorm", "aspp_rates"]
