"""Where and how a run computes: the device, the seeds and deterministic algorithms, mixed precision."""

import os
import random

import numpy as np
import torch

from ..errors import DLAError
from ..inference.fast import native_bf16


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python's, NumPy's and torch's generators; choose deterministic or fast algorithms.

    ``deterministic`` turns on ``torch.use_deterministic_algorithms`` (warning, not failing, for operations
    that have no deterministic version, such as bilinear upsampling's backward on CUDA) and cuDNN's
    deterministic mode; otherwise cuDNN benchmarks kernels for speed.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # required by deterministic cuBLAS
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic


def select_device(name: str) -> torch.device:
    """``auto``: CUDA when available, else the CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise DLAError("device is cuda but no CUDA device is available; set device: cpu (or auto)")
    return torch.device(name)


def autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``optim.amp`` (None: full precision). fp16 needs CUDA (and a GradScaler); ``auto``
    is bf16 where the device computes it natively (``dla.inference.native_bf16``: emulated bf16 is slower than
    fp32), else full precision."""
    if amp == "auto":
        return torch.bfloat16 if native_bf16(device) else None
    if amp == "fp16" and device.type != "cuda":
        raise DLAError(f"optim.amp: fp16 needs a CUDA device, the device is {device}; use bf16 or none")
    return {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]
