"""What ``bench`` returns: one record per measured row, the machine and its matmul peaks, the settings; all of
it written as JSON by ``BenchResult.save`` (raw samples included), so a run can be compared and reproduced."""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .memory import Memory
from .timing import Timing


@dataclass
class InferenceRow:
    """One model run by one backend at ``size`` (H, W): latency at batch 1 and throughput at ``batch``.

    ``macs`` are per image; ``gflops`` is ``2 macs / median latency``; ``percent_of_peak`` compares it with the
    matmul peaks (``fp32``, ``bf16``: None where no bf16 peak); ``speedup`` is eager's median latency over this
    backend's, both measured interleaved; ``memory`` is at ``batch``.
    """

    model: str
    backend: str
    size: tuple[int, int]
    batch: int
    output: str
    params: int
    macs: int
    latency: Timing
    throughput: Timing
    images_per_s: float
    gflops: float
    percent_of_peak: dict[str, float | None]
    speedup: float
    memory: Memory | None


@dataclass
class SweepRow:
    """One model and backend at one input size and batch; ``growth_per_pixel`` is its time per pixel over the
    time per pixel at the sweep's smallest size (same model, backend and batch): 1 while cost grows linearly."""

    model: str
    backend: str
    size: tuple[int, int]
    batch: int
    macs: int
    latency: Timing
    ms_per_megapixel: float
    growth_per_pixel: float
    speedup: float
    memory: Memory | None


@dataclass
class TrainRow:
    """Training steps of one model in one setting (``train.SETTINGS``) at ``batch``; memory without and with
    ``set_grad_checkpointing`` (None for models without it)."""

    model: str
    setting: str
    size: tuple[int, int]
    batch: int
    bf16: bool
    step: Timing
    images_per_s: float
    speedup: float
    memory: Memory | None
    memory_checkpointed: Memory | None


@dataclass
class BenchResult:
    """Everything one ``bench`` run measured."""

    machine: dict[str, Any]
    peaks: dict[str, float | None]
    settings: dict[str, Any]
    inference: list[InferenceRow] = field(default_factory=list)
    sweep: list[SweepRow] = field(default_factory=list)
    train: list[TrainRow] = field(default_factory=list)

    def save(self, path: str | Path) -> Path:
        """Write the result as JSON (sizes as ``[H, W]``, times in ms, memory in MiB, peaks in GFLOP/s)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path
