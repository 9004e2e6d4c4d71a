"""The fast inference path: ``optimize(model)``.

What it does, each step a measured gain on CPUs (``docs/benchmarks.md``), none changing the architecture:

- BatchNorm folded into the convolutions before it (``fold.py``): one pass over each map fewer.
- channels_last (NHWC) weights and inputs, the layout oneDNN's convolutions run fastest in.
- bfloat16 weights and activations where the CPU computes bf16 natively (AVX-512 BF16 or AMX: ``native_bf16``);
  fp32 elsewhere, where emulated bf16 would be slower than fp32. The output is returned as fp32.
- ``torch.inference_mode`` around the call: no autograd bookkeeping.
- optionally ``torch.compile`` (inductor), which fuses the remaining element-wise work; it compiles once
  per input shape, so it pays for a server, not for a single image.

The accuracy cost of bf16 is measured on real data by ``benchmarks/fast_path_accuracy.py`` (argmax agreement
with eager fp32 and mIoU) and checked on a few images by the tests.
"""

import copy
from typing import Literal

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

    The input is cast to the model's precision and channels_last layout; the output (a tensor, or a tuple or
    ``AuxOutput`` of tensors) is returned in fp32 and the usual contiguous layout. Runs under
    ``torch.inference_mode``, so it cannot be trained: keep the original model for that.
    """

    def __init__(self, model: nn.Module, dtype: torch.dtype, channels_last: bool) -> None:
        super().__init__()
        self.model = model
        self.dtype = dtype
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def forward(self, x: Tensor) -> Tensor:
        with torch.inference_mode():
            out = self.model(x.to(dtype=self.dtype, memory_format=self.memory_format))
            return _to_fp32(out)


def _to_fp32(out: Tensor | tuple) -> Tensor | tuple:
    if isinstance(out, Tensor):
        return out.float().contiguous()
    return type(out)(*(_to_fp32(o) for o in out)) if hasattr(out, "_fields") else type(out)(_to_fp32(o) for o in out)


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
    fast = fast.to(dtype=dtype, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    if compile:
        fast = torch.compile(fast)
    return FastModel(fast, dtype, channels_last)
