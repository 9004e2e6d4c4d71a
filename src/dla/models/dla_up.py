"""DLA for dense prediction: a DLA backbone and IDA up-sampling (Sec. 4.2, Fig. 4).

The backbone's levels from ``log2(down_ratio)`` to 5 are fused into one map at ``1 / down_ratio`` of the
input, scored by a 1x1 convolution (``fc``) and up-sampled to the input size (``up``, bilinear and
frozen). The paper's 2s, 4s and 8s models are ``down_ratio`` 2, 4 and 8.

Two decoders, both built from ``IDAUp`` (Fig. 4):

- ``decoder="authors"`` (default): the authors' published ``DLAUp``. IDA-up is applied again and again,
  deepest levels first: each pass aggregates one more, shallower level with all the deeper aggregates,
  at the shallower level's width and resolution (a triangle of nodes). Their CamVid and Cityscapes
  results (Tables 4, 5, 8, 9) and checkpoints are of this decoder; with it the state-dict keys and
  shapes equal those of their ``DLASeg``, so their checkpoints load with ``strict=True``.
- ``decoder="paper"``: Sec. 4.2 as written: "project the outputs of stages 3-6 to 32 channels and then
  interpolate the stages to the same resolution as stage 2 ... iteratively aggregate these stages": a
  single IDA-up over the levels into ``decoder_channels`` (32) channels. Lighter; no published weights.
"""

from collections.abc import Sequence

from torch import Tensor, nn

from ..aggregation import IDAUp
from ..errors import DLAError
from ..layers.upsample import BilinearUpsample
from ._builder import create_backbone
from ._pretrained import PretrainedCfg
from ._registry import register_model
from .dla import DLA


class DLAUp(nn.Module):
    """The authors' iterated IDA-up decoder over levels ``x_1 .. x_n`` (shallow to deep).

    Pass ``i`` (``ida_i``) takes level ``j = n - 1 - i`` (1-based from the deep end) and the ``i + 1``
    aggregates made so far from the deeper levels, projects and up-samples them to level ``j``'s width
    and resolution, and aggregates them iteratively; its ``i + 1`` outputs replace the deeper entries. The
    last pass ends at ``x_1``'s resolution with ``channels[0]`` channels.

    Shapes: ``x_k`` ``(N, channels[k], H / scales[k], W / scales[k])`` -> ``(N, channels[0], H, W)``, with
    ``scales`` the down-sampling of each level relative to the first (1, 2, 4, ...).
    """

    def __init__(self, channels: Sequence[int], scales: Sequence[int]) -> None:
        super().__init__()
        in_channels, scales = list(channels), list(scales)
        self.num_levels = len(channels)
        for i in range(self.num_levels - 1):
            j = self.num_levels - 2 - i
            up_factors = [s // scales[j] for s in scales[j:]]
            self.add_module(f"ida_{i}", IDAUp(in_channels[j:], channels[j], up_factors))
            scales[j + 1 :] = [scales[j]] * (self.num_levels - 1 - j)
            in_channels[j + 1 :] = [channels[j]] * (self.num_levels - 1 - j)

    def forward(self, levels: list[Tensor]) -> Tensor:
        levels = list(levels)
        for i in range(self.num_levels - 1):
            j = self.num_levels - 2 - i
            levels[j + 1 :] = self.get_submodule(f"ida_{i}")(levels[j:])
        return levels[-1]


class PaperDecoder(nn.Module):
    """Sec. 4.2 as written: one IDA-up of all levels into ``channels`` channels at the first level's resolution."""

    def __init__(self, in_channels: Sequence[int], scales: Sequence[int], channels: int = 32) -> None:
        super().__init__()
        self.ida_up = IDAUp(in_channels, channels, scales)

    def forward(self, levels: list[Tensor]) -> Tensor:
        return self.ida_up(levels)[-1]


class DLASeg(nn.Module):
    """A DLA segmentation network: backbone, IDA-up decoder, 1x1 classifier, frozen bilinear up-sampling.

    Built by ``build_dlaseg`` (which looks the backbone up and loads its weights); the registered
    constructors call it.

    Args:
        backbone: a built ``DLA`` classification network (output stride 32).
        num_classes: output classes.
        down_ratio: 2, 4, 8 or 16: the decoder's output stride (the paper's 2s / 4s / 8s).
        decoder: ``"authors"`` (``DLAUp``, default, loads the authors' weights) or ``"paper"`` (Sec. 4.2).
        decoder_channels: width of the ``"paper"`` decoder (32 in Sec. 4.2).

    The backbone keeps its ImageNet classifier (``base.fc``), unused, as the authors' model does, so
    both their segmentation checkpoints and ImageNet backbone weights load unchanged.

    Shapes: ``(N, in_chans, H, W) -> (N, num_classes, H, W)`` logits for any ``H, W``: the backbone rounds
    sizes up, and the decoder and the final up-sampling crop the surplus at the bottom and right.
    """

    def __init__(
        self, backbone: DLA, num_classes: int = 19, down_ratio: int = 2, decoder: str = "authors", decoder_channels: int = 32
    ) -> None:
        super().__init__()
        if down_ratio not in (2, 4, 8, 16):
            raise DLAError(f"down_ratio must be 2, 4, 8 or 16, got {down_ratio}")
        self.num_classes = num_classes
        self.block_name = backbone.block_name
        self.down_ratio = down_ratio
        self.first_level = down_ratio.bit_length() - 1
        self.pretrained_cfg = PretrainedCfg(
            num_classes=num_classes,
            first_conv="base.base_layer.0",
            classifier=("fc", "up"),
            paper_name=f"{backbone.pretrained_cfg.paper_name} {down_ratio}s",
            license=backbone.pretrained_cfg.license,
        )
        channels = backbone.channels[self.first_level :]
        scales = [2**i for i in range(len(channels))]

        self.base = backbone
        self.dla_up: DLAUp | PaperDecoder
        if decoder == "authors":
            self.dla_up = DLAUp(channels, scales)
            head_channels = channels[0]
        elif decoder == "paper":
            self.dla_up = PaperDecoder(channels, scales, decoder_channels)
            head_channels = decoder_channels
        else:
            raise DLAError(f"decoder must be 'authors' or 'paper', got {decoder!r}")
        fc = nn.Conv2d(head_channels, num_classes, kernel_size=1)
        self.fc = nn.Sequential(fc)
        self.up = BilinearUpsample(num_classes, down_ratio, learnable=False)
        nn.init.kaiming_normal_(fc.weight, mode="fan_out", nonlinearity="relu")
        if fc.bias is not None:  # built with one
            nn.init.zeros_(fc.bias)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Checkpoint the backbone's HDA trees in training (``DLA.set_grad_checkpointing``); the IDA-up decoder
        and the head are not checkpointed."""
        self.base.set_grad_checkpointing(enable)

    def forward(self, x: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        levels = self.base.forward_intermediates(x, indices=range(self.first_level, 6), intermediates_only=True)
        x = self.fc(self.dla_up(levels))
        return self.up(x)[..., :height, :width]


def build_dlaseg(
    backbone: str | DLA = "dla34",
    pretrained_backbone: bool | str | None = None,
    in_chans: int = 3,
    output_stride: int = 32,
    **kwargs,
) -> DLASeg:
    """A ``DLASeg`` on ``backbone``: a registered DLA name (``"dla34"``, built with ``in_chans`` inputs) or a
    built ``DLA``; ``pretrained_backbone`` (``True``, a path or a URL) loads its ImageNet weights. Only
    ``output_stride=32``: resolution is recovered by the decoder, not by dilation. ``kwargs`` go to
    ``DLASeg`` (``num_classes``, ``down_ratio``, ``decoder``, ``decoder_channels``)."""
    if output_stride != 32:
        raise DLAError("segmentation models recover resolution with IDA-up: the backbone's output_stride stays 32")
    base = create_backbone(backbone, DLA, "DLASeg", "dla34", pretrained_backbone, in_chans=in_chans)
    return DLASeg(base, **kwargs)


@register_model
def dlaup(backbone: str = "dla34", **kwargs) -> DLASeg:
    """DLA with IDA up-sampling on any registered DLA backbone (``create_model("dlaup", backbone="dla60x")``)."""
    return build_dlaseg(backbone, **kwargs)


@register_model
def dla34up(**kwargs) -> DLASeg:
    """DLA-34 with IDA-up (Tables 4, 5, 8, 9)."""
    return build_dlaseg("dla34", **kwargs)


@register_model
def dla60up(**kwargs) -> DLASeg:
    """DLA-60 with IDA-up (Table 8)."""
    return build_dlaseg("dla60", **kwargs)


@register_model
def dla102up(**kwargs) -> DLASeg:
    """DLA-102 with IDA-up (Tables 4, 8, 9)."""
    return build_dlaseg("dla102", **kwargs)


@register_model
def dla169up(**kwargs) -> DLASeg:
    """DLA-169 with IDA-up (Tables 4, 8, 9)."""
    return build_dlaseg("dla169", **kwargs)


@register_model
def dla34edge(**kwargs) -> DLASeg:
    """DLA-34 for boundary detection (Sec. 5.4, Tables 6, 7): IDA-up to one boundary logit per pixel;
    ``down_ratio`` 8, 4 or 2 gives the paper's DLA-34 8s, 4s and 2s."""
    return build_dlaseg("dla34", **{"num_classes": 1, **kwargs})


@register_model
def dla102edge(**kwargs) -> DLASeg:
    """DLA-102 for boundary detection (Sec. 5.4, Table 6: DLA-102 2s)."""
    return build_dlaseg("dla102", **{"num_classes": 1, **kwargs})


__all__ = ["DLASeg", "DLAUp", "PaperDecoder", "build_dlaseg"]
