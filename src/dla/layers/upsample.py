"""Up-sampling: a transposed convolution initialised to bilinear interpolation (FCN, Sec. 4.2), and bilinear
resizing to another map's size (the peer systems' fusions, at any input size)."""

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def resize_like(x: Tensor, reference: Tensor) -> Tensor:
    """Bilinear resizing (``align_corners=False``) of ``x`` to ``reference``'s height and width: sizes that
    are not multiples of the stride (720x960, 97x131) fuse exactly, where a fixed scale factor would not."""
    return F.interpolate(x, size=reference.shape[-2:], mode="bilinear", align_corners=False)


class BilinearUpsample(nn.ConvTranspose2d):
    """Depthwise ``ConvTranspose2d`` that starts as bilinear interpolation by an integer ``factor``.

    Kernel ``2 * factor``, stride ``factor``, padding ``factor // 2``, one filter per channel and no bias,
    so ``(N, C, H, W) -> (N, C, factor * H, factor * W)``. Sec. 4.2: "the upsampling steps are initialized
    to bilinear interpolation and can then be learned"; ``learnable=False`` freezes the weights (the
    authors' final up-sampling to the input size).

    Under CPU autocast it runs in fp32 (and returns fp32): PyTorch's bf16 depthwise transposed convolution
    on CPU is 2-7x slower than fp32, enough to cost a fifth of a bf16 training step of DLA-up.
    """

    def __init__(self, channels: int, factor: int, learnable: bool = True) -> None:
        super().__init__(channels, channels, 2 * factor, stride=factor, padding=factor // 2, groups=channels, bias=False)
        self.factor = factor
        self.reset_parameters()
        self.weight.requires_grad_(learnable)

    def forward(self, x: Tensor, output_size: list[int] | None = None) -> Tensor:
        if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            with torch.autocast("cpu", enabled=False):
                return super().forward(x.float(), output_size)
        return super().forward(x, output_size)

    def reset_parameters(self) -> None:
        if not hasattr(self, "factor"):  # called by nn.ConvTranspose2d.__init__ before factor is set
            return
        with torch.no_grad():
            self.weight.copy_(bilinear_kernel(self.kernel_size[0]).expand_as(self.weight))


def bilinear_kernel(size: int) -> torch.Tensor:
    """The ``size x size`` kernel of bilinear interpolation (the outer product of two tents)."""
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    tent = 1 - (torch.arange(size, dtype=torch.float32) - center).abs() / factor
    return tent[:, None] * tent[None, :]
