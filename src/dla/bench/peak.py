"""The machine's own limit: the throughput of a large square matrix product, fp32 and (where native) bf16.

A convolutional network's arithmetic runs as matrix products (im2col/GEMM or their direct equivalents), so
the best GFLOP/s the machine reaches on one large product, with the same threads, is the practical ceiling
that a model's achieved GFLOP/s is compared with. The peak is the best of several timed products (a peak,
not a typical value), after warm-up. On CUDA, fp32 means full fp32 (PyTorch's default, TF32 off).
"""

import torch

from ..inference import native_bf16
from .timing import interleaved, synchronizer

MATMUL_SIZE = {"cpu": 2048, "cuda": 8192}
"""Side of the square matrices: large enough to reach the peak (2 x 2048^3 = 17 GFLOP), small enough to take
a fraction of a second on a few CPU cores."""


def matmul_gflops(dtype: torch.dtype, device: torch.device, size: int, repeats: int = 5) -> float:
    """The best GFLOP/s (``2 size^3`` floating-point operations per product) of ``repeats`` timed products."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    timing = interleaved({"matmul": lambda: torch.mm(a, b)}, warmup=2, repeats=repeats, sync=synchronizer(device))
    return 2 * size**3 / min(timing["matmul"].samples_ms) / 1e6


def matmul_peaks(device: torch.device) -> dict[str, float | None]:
    """GFLOP/s of fp32 and bf16 square products on ``device``; bf16 is None where it is not native (emulated
    bf16 is no ceiling for anything)."""
    size = MATMUL_SIZE[device.type]
    return {
        "fp32": matmul_gflops(torch.float32, device, size),
        "bf16": matmul_gflops(torch.bfloat16, device, size) if native_bf16(device) else None,
        "size": size,
    }
