"""The fast inference path: ``optimize(model)``.

What it does, each step a measured gain on CPUs (``docs/benchmarks.md``), none changing the architecture:

- BatchNorm folded into the convolutions before it (``fold.py``): one pass over each map fewer.
- channels_last (NHWC) weights and inputs, the layout oneDNN's convolutions run fastest in.
- bfloat16 weights and activations where the CPU computes bf16 natively (AVX-512 BF16 or AMX: ``native_bf16``);
  fp32 elsewhere, where emulated bf16 would be slower than fp32. The output is returned as fp32.
  Depthwise transposed convolutions (DLA's bilinear up-sampling, ``BilinearUpsample``) stay in fp32: oneDNN
  has no fast bf16 kernel for them (slower in bf16 than in fp32 on a Sapphire Rapids core), and the cast is cheap.
- ``torch.inference_mode`` around the call: no autograd bookkeeping.
- optionally ``torch.compile`` (inductor, with ``freezing``: the weights become constants, so convolutions
  are prepacked and fused with their activations); it compiles once per input shape (seconds to a minute),
  so it pays for a server or a folder of same-sized images, not for a single image.

The accuracy cost of bf16 is measured on real data by ``benchmarks/fast_path_accuracy.py`` (argmax agreement
with eager fp32 and mIoU) and checked on a few images by the tests.
"""

import copy
from typing import Literal, cast

import torch
from torch import Tensor, nn

from ..errors import DLAError
from .fold import fold_batchnorm

Precision = Literal["auto", "fp32", "bf16"]


def native_bf16(device: torch.device | str = "cpu") -> bool:
    """Whether ``device`` computes bfloat16 natively: on CPUs AVX-512 BF16 or AMX tiles (Cooper Lake, Sapphire
    Rapids and later), on CUDA devices of compute capability 8.0 (Ampere) and later."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def resolve_precision(precision: Precision, device: torch.device | str = "cpu") -> torch.dtype:
    """``auto`` is bf16 where ``native_bf16(device)``, else fp32."""
    if precision not in ("auto", "fp32", "bf16"):
        raise DLAError(f"precision is auto, fp32 or bf16, got {precision!r}")
    if precision == "auto":
        precision = "bf16" if native_bf16(device) else "fp32"
    return torch.bfloat16 if precision == "bf16" else torch.float32


class FastModel(nn.Module):
    """A model prepared by ``optimize``: call it like the original, with fp32 ``N x C x H x W`` inputs.

    The input is cast to the model's precision and channels_last layout; the output (the eval-mode model's
    tensor) is returned in fp32, in the layout the model produced it (channels_last for dense outputs: the
    classes of a pixel side by side, so an argmax over them reads contiguous memory, several times faster than
    over the planes of a contiguous ``N x C x H x W`` tensor; ``.contiguous()`` if a consumer needs it). Runs under
    ``torch.inference_mode``, so it cannot be trained: keep the original model for that.
    """

    def __init__(self, model: nn.Module, dtype: torch.dtype, channels_last: bool) -> None:
        super().__init__()
        self.model = model
        self.dtype = dtype
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    @property
    def output_stride(self) -> int | None:
        """The prepared model's output stride, for models that can change it (DeepLabv3); else None."""
        return getattr(self.model, "output_stride", None)

    def set_output_stride(self, output_stride: int) -> None:
        """Run the prepared model at ``output_stride`` (DeepLabv3, Sec. 4.2: the folded weights are unchanged)."""
        switch = getattr(self.model, "set_output_stride", None)
        if not callable(switch):
            raise DLAError(f"eval.output_stride: {type(self.model).__name__} cannot change its output stride (DeepLabv3 can)")
        switch(output_stride)

    def forward(self, x: Tensor) -> Tensor:
        with torch.inference_mode():
            return self.model(x.to(dtype=self.dtype, memory_format=self.memory_format)).float()


class Float32(nn.Module):
    """Runs ``module`` in fp32 inside a lower-precision model: ``x`` is cast up, the result back to ``x``'s dtype."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module.float()

    def forward(self, x: Tensor) -> Tensor:
        return self.module(x.float()).to(x.dtype)


def _keep_depthwise_transposed_in_fp32(model: nn.Module) -> None:
    depthwise = [
        name
        for name, m in model.named_modules()
        if isinstance(m, nn.ConvTranspose2d) and m.groups > 1 and m.groups == m.in_channels == m.out_channels
    ]
    for name in depthwise:
        model.set_submodule(name, Float32(model.get_submodule(name)))


def optimize(
    model: nn.Module,
    *,
    precision: Precision = "auto",
    channels_last: bool = True,
    fold_bn: bool = True,
    compile: bool = False,
    example: Tensor | None = None,
) -> FastModel:
    """A copy of ``model`` prepared for fast inference (module docstring); ``model`` itself is untouched.

    Args:
        model: a network in any mode; the copy is put in eval mode.
        precision: ``auto`` (bf16 where the device computes it natively, else fp32), ``fp32`` or ``bf16``.
        channels_last: NHWC layout for weights and inputs.
        fold_bn: fold BatchNorm into the convolutions (``fold_batchnorm``; ``example`` finds the pairs).
        compile: ``torch.compile`` the prepared model (the first call of each input shape compiles).
        example: an input the model accepts, on its device, for finding the BatchNorm pairs.
    """
    device = next(model.parameters()).device
    dtype = resolve_precision(precision, device)
    fast = fold_batchnorm(model, example) if fold_bn else copy.deepcopy(model).eval()
    fast = fast.to(dtype)
    if channels_last:
        fast = fast.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # documented, not in the stubs
    if dtype != torch.float32:
        _keep_depthwise_transposed_in_fp32(fast)
    if compile:
        # freezing: weights become constants, so inductor prepacks them and fuses convolution + activation
        fast = cast(nn.Module, torch.compile(fast, options={"freezing": True}))
    return FastModel(fast, dtype, channels_last)
