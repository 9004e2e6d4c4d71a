"""Peak memory of one configuration (model, backend or training setting, input size, batch).

CPU (Linux): the peak resident set size of a fresh child process (``python -m dla.bench CONFIG_JSON``) that
builds the model, prepares the backend and makes the input, then runs the step twice (the first run of some
backends allocates differently from the next). A fresh process per configuration means that memory one
configuration allocated (and the allocator kept) cannot hide another's peak. Before the first step the child
collects garbage, records its resident size (``baseline_mib``: the interpreter and torch libraries, the model as
the backend runs it, the input) and resets its high-water mark (``/proc/self/clear_refs``), so ``peak_mib``, the
high-water mark (``VmHWM``) after the steps, is the most the process held while running the model: the baseline
plus the steps' activations and workspace, without what preparing the backend needed transiently. (Not
``ru_maxrss``: it cannot be reset, and Linux carries it across ``exec`` from the forked copy of the parent.) The
child uses the parent's thread count.

CUDA: ``torch.cuda.max_memory_allocated`` over two runs of the step, after ``reset_peak_memory_stats``, in the
benchmark's own process; ``baseline_mib`` is what was allocated before them. Allocator caching and the CUDA
context are not counted."""

import gc
import json
import os
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
    window: tuple[int, int] | None = None


def configured_step(config: MemoryConfig, device: torch.device) -> Step:
    """The step ``config`` describes, with its model and input built on ``device``."""
    model = build_model(config.model, config.model_kwargs, device)
    shape = input_shape(config.model_kwargs, config.batch, config.size)
    x = torch.randn(shape, device=device)
    meta = meta_model(config.model, config.model_kwargs)
    if config.train is None:
        return inference_step(prepare_backend(config.backend, model, x[:1], config.window), x, output_kind(meta, shape))
    if config.checkpointing:
        set_grad_checkpointing = getattr(model, "set_grad_checkpointing", None)
        if set_grad_checkpointing is None:
            raise DLAError(f"{config.model} has no set_grad_checkpointing(); DLA and DLA segmentation models have it")
        set_grad_checkpointing(True)
    return train_step(model, x, random_targets(train_output(meta, shape), device), config.train)


def _resident_mib(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (high-water mark) of this process from ``/proc/self/status``, in MiB."""
    line = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith(f"{field}:"))
    return int(line.split()[1]) / 1024  # kB


def measure_in_child(config: MemoryConfig) -> Memory:
    """Run ``config`` on the CPU in a fresh child process (module docstring) and read its peak RSS (Linux)."""
    if not Path("/proc/self/clear_refs").exists():
        raise DLAError("peak CPU memory is read from /proc (Linux); on this system run without it (memory=False, --no-memory)")
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
    gc.collect()
    baseline = _resident_mib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # the high-water mark restarts from the current size
    for _ in range(2):
        step()
    print(json.dumps(asdict(Memory(_resident_mib("VmHWM"), baseline, "peak RSS of a fresh child process"))))
