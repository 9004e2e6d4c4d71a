"""Peak memory of one configuration (model, backend or training setting, input size, batch).

CPU: the peak resident set size of a fresh child process (``python -m dla.bench CONFIG_JSON``) that builds the
model, prepares the backend, makes the input, then runs the step twice (the first run of some backends allocates
differently from the next). A fresh process per configuration means that memory one configuration allocated
(and the allocator kept) cannot hide another's peak. The peak includes the Python interpreter and the torch
libraries, the weights (and what the backend made of them), the input and the step's own activations and
workspace; ``baseline_mib`` is the same process's peak before the first step (libraries, model, backend
preparation, input), so ``peak - baseline`` is about what running the step costs. The child uses the parent's
thread count. The peak is the child's own high-water mark (``VmHWM``), not ``ru_maxrss``, which Linux carries
across ``exec`` from the forked copy of the parent, so a child of a large parent would report the parent's size.

CUDA: ``torch.cuda.max_memory_allocated`` over two runs of the step, after ``reset_peak_memory_stats``, in the
benchmark's own process; ``baseline_mib`` is what was allocated before them. Allocator caching and the CUDA
context are not counted."""

import json
import os
import resource
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import DLAError
from .timing import Step
from .train import random_targets, train_output, train_step
from .workload import build_model, inference_step, input_shape, meta_model, output_kind, prepare_backend


@dataclass
class Memory:
    """Peak memory of one configuration and the same measure before its first step, in MiB (module docstring)."""

    peak_mib: float
    baseline_mib: float
    measure: str


@dataclass
class MemoryConfig:
    """One configuration to measure: ``backend`` for inference, or ``train`` (a ``train.SETTINGS`` name)."""

    model: str
    size: tuple[int, int]
    batch: int
    threads: int
    backend: str = "eager"
    train: str | None = None
    checkpointing: bool = False
    model_kwargs: dict[str, Any] = field(default_factory=dict)


def configured_step(config: MemoryConfig, device: torch.device) -> Step:
    """The step ``config`` describes, with its model and input built on ``device``."""
    model = build_model(config.model, config.model_kwargs, device)
    shape = input_shape(config.model_kwargs, config.batch, config.size)
    x = torch.randn(shape, device=device)
    meta = meta_model(config.model, config.model_kwargs)
    if config.train is None:
        return inference_step(prepare_backend(config.backend, model, x[:1]), x, output_kind(meta, shape))
    if config.checkpointing:
        set_grad_checkpointing = getattr(model, "set_grad_checkpointing", None)
        if set_grad_checkpointing is None:
            raise DLAError(f"{config.model} has no set_grad_checkpointing(); DLA and DLA segmentation models have it")
        set_grad_checkpointing(True)
    return train_step(model, x, random_targets(train_output(meta, shape), device), config.train)


def _peak_rss_mib() -> float:
    """This process's peak resident memory: ``VmHWM`` on Linux, ``ru_maxrss`` elsewhere (bytes on macOS)."""
    status = Path("/proc/self/status")
    if status.exists():
        line = next(line for line in status.read_text().splitlines() if line.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def measure_in_child(config: MemoryConfig) -> Memory:
    """Run ``config`` on the CPU in a fresh child process (module docstring) and read its peak RSS."""
    env = dict(os.environ, OMP_NUM_THREADS=str(config.threads))
    source = str(Path(__file__).resolve().parents[2])  # the folder holding the dla package
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [source, env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "dla.bench", json.dumps(asdict(config))]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise DLAError(f"measuring the memory of {config} failed in its child process:\n{done.stderr[-2000:]}")
    return Memory(**json.loads(done.stdout.splitlines()[-1]))


def measure_cuda(step: Step, device: torch.device) -> Memory:
    """Peak CUDA memory allocated while ``step`` runs twice (module docstring)."""
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    baseline = torch.cuda.memory_allocated(device)
    for _ in range(2):
        step()
    torch.cuda.synchronize(device)
    return Memory(torch.cuda.max_memory_allocated(device) / 2**20, baseline / 2**20, "torch.cuda.max_memory_allocated")


def main(config_json: str) -> None:
    """The child process: build, run twice, print ``Memory`` as JSON on stdout."""
    config = MemoryConfig(**json.loads(config_json))
    torch.set_num_threads(config.threads)
    step = configured_step(config, torch.device("cpu"))
    baseline = _peak_rss_mib()
    for _ in range(2):
        step()
    print(json.dumps(asdict(Memory(_peak_rss_mib(), baseline, "peak RSS of a fresh child process"))))
