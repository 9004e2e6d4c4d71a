"""The machine a benchmark runs on: its description (stored with the results, so they can be reproduced and
compared) and what it computes natively (bf16)."""

import os
import platform
from pathlib import Path
from typing import Any

import torch


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask, not the machine's total)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def native_bf16(device: torch.device) -> bool:
    """Whether bf16 matrix products run in hardware: CPUs with AVX-512 BF16 or AMX, CUDA devices with bf16.

    Elsewhere bf16 is emulated and slower than fp32, so the fast training settings stay in fp32 there and no
    bf16 peak is measured.
    """
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def cpu_name() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (Linux), else what ``platform`` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def describe_machine(device: torch.device, threads: int) -> dict[str, Any]:
    """What the results depend on: CPU, cores, threads used, GPU, torch and Python versions, native bf16."""
    return {
        "cpu": cpu_name(),
        "cores": available_cores(),
        "threads": threads,
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "native_bf16": native_bf16(device),
    }
