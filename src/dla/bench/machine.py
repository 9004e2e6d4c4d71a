"""The machine a benchmark runs on, described with its results so that they can be reproduced and compared."""

import os
import platform
from pathlib import Path
from typing import Any

import torch

from ..inference import native_bf16


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask, not the machine's total)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


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
