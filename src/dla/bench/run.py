"""``bench``: parameters, multiply-adds, latency, throughput, achieved GFLOP/s against the machine's matmul
peaks, speed-up against eager fp32, peak memory; optionally a sweep over input sizes and batches, and training
steps. The protocol is written in ``docs/benchmarks.md``."""

import copy
import gc
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..complexity import count_macs, count_params
from ..engine.runtime import select_device
from ..errors import DLAError
from ..inference import native_bf16
from ..models import list_models
from .machine import available_cores, describe_machine
from .memory import Memory, MemoryConfig, configured_step, measure_cuda, measure_in_child
from .peak import matmul_peaks
from .results import BenchResult, InferenceRow, SweepRow, TrainRow
from .timing import Timing, interleaved, synchronizer
from .train import SETTINGS, random_targets, train_output, train_step
from .workload import (
    backend_names,
    build_model,
    inference_step,
    input_shape,
    meta_model,
    output_kind,
    prepare_backend,
)

Size = tuple[int, int]

SWEEP_SIZES: tuple[Size, ...] = ((256, 256), (512, 512), (512, 1024), (1024, 1024), (1024, 2048))
"""``--sweep``'s input sizes, (H, W): from 256x256 to a whole Cityscapes frame (2048 wide, 1024 high)."""
SWEEP_BATCHES = (1, 2, 4)


def bench(
    models: Sequence[str],
    size: Sequence[int] = (224, 224),
    batch: int = 1,
    *,
    backends: Sequence[str] = ("eager", "fast"),
    device: str = "cpu",
    threads: int | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    repeats: int = 20,
    warmup: int = 3,
    memory: bool = True,
    train: bool = False,
    sweep: bool = False,
    sweep_sizes: Sequence[Sequence[int]] = SWEEP_SIZES,
    sweep_batches: Sequence[int] = SWEEP_BATCHES,
    window: Sequence[int] | None = None,
) -> BenchResult:
    """Benchmark ``models`` (registered names, built with ``model_kwargs``) at input ``size`` (H, W).

    For every model and backend (``dla.inference.BACKENDS``; ``eager`` always runs, first, as the baseline):
    latency at batch 1 and throughput at ``batch``, ``warmup`` untimed then ``repeats`` timed rounds with the
    backends interleaved; achieved GFLOP/s next to the matmul peaks measured at the start; peak memory at
    ``batch`` (``memory=False`` skips it: it costs a child process per configuration on the CPU). ``sweep``
    adds latency and memory over ``sweep_sizes`` x ``sweep_batches``; ``train`` adds training steps, eager
    versus fast settings, and their memory with and without gradient checkpointing. ``threads`` (default or 0:
    the cores this process may use) is set for the run and restored after it; ``device`` is ``cpu``, ``cuda``
    or ``auto``. ``window`` (H, W) runs every backend's model on overlapping windows of that size
    (``dla.inference.tiled``: tiled inference, whose memory grows with the window, not the image).
    Absolute times depend on the machine (``BenchResult.machine``); ratios are what compares.
    """
    _check_at_least(1, batch=batch, repeats=repeats, **{f"a sweep batch ({b})": b for b in sweep_batches})
    _check_at_least(0, warmup=warmup, threads=threads or 0)
    sizes = [_size(s) for s in (size, *sweep_sizes)]
    unknown = [name for name in models if name not in list_models()]
    if unknown:  # before anything is measured, not after the first models
        raise DLAError(f"unknown model {', '.join(map(repr, unknown))}; known models: {', '.join(list_models())}")
    runner = _Runner(
        device=select_device(device),
        threads=threads or available_cores(),
        backends=backend_names(backends),
        model_kwargs=dict(model_kwargs or {}),
        repeats=repeats,
        warmup=warmup,
        memory=memory,
        window=None if window is None else _size(window),
    )
    with _num_threads(runner.threads):
        peaks = matmul_peaks(runner.device)
        result = BenchResult(
            machine=describe_machine(runner.device, runner.threads),
            peaks=peaks,
            settings={
                "models": list(models),
                "size": sizes[0],
                "batch": batch,
                "backends": runner.backends,
                "model_kwargs": runner.model_kwargs,
                "repeats": repeats,
                "warmup": warmup,
                "window": runner.window,
            },
        )
        for name in models:
            result.inference += runner.inference(name, sizes[0], batch, peaks)
            if sweep:
                result.sweep += runner.sweep(name, sizes[1:], sweep_batches)
            if train:
                result.train += runner.train(name, sizes[0], batch)
    return result


@dataclass
class _Runner:
    """The settings of one ``bench`` run and the measurements it makes with them."""

    device: torch.device
    threads: int
    backends: list[str]
    model_kwargs: dict[str, Any]
    repeats: int
    warmup: int
    memory: bool
    window: Size | None = None

    def inference(self, name: str, size: Size, batch: int, peaks: Mapping[str, float | None]) -> list[InferenceRow]:
        """One row per backend: latency at batch 1, throughput at ``batch``, memory at ``batch``."""
        meta, shape = meta_model(name, self.model_kwargs), input_shape(self.model_kwargs, 1, size)
        kind, macs, params = output_kind(meta, shape), count_macs(meta, shape), count_params(meta)
        modules = self._prepare(name, size)
        latency = self._time(modules, kind, size, 1)
        throughput = latency if batch == 1 else self._time(modules, kind, size, batch)
        del modules
        rows = []
        for backend in self.backends:
            gflops = 2 * macs / latency[backend].median_ms / 1e6
            rows.append(
                InferenceRow(
                    model=name,
                    backend=backend,
                    size=size,
                    batch=batch,
                    output=kind,
                    params=params,
                    macs=macs,
                    latency=latency[backend],
                    throughput=throughput[backend],
                    images_per_s=batch * 1e3 / throughput[backend].median_ms,
                    gflops=gflops,
                    percent_of_peak={key: _percent(gflops, peaks[key]) for key in ("fp32", "bf16")},
                    speedup=_speedup(latency, backend),
                    memory=self._memory(self._config(name, size, batch, backend=backend)),
                )
            )
        return rows

    def sweep(self, name: str, sizes: Sequence[Size], batches: Sequence[int]) -> list[SweepRow]:
        """One row per size (smallest first), batch and backend, with the growth of time per pixel over the
        smallest size."""
        meta = meta_model(name, self.model_kwargs)
        smallest: dict[tuple[str, int], float] = {}  # (backend, batch) -> ms per megapixel at the smallest size
        rows = []
        for size in sorted(sizes, key=lambda s: s[0] * s[1]):
            shape = input_shape(self.model_kwargs, 1, size)
            kind, macs = output_kind(meta, shape), count_macs(meta, shape)
            modules = self._prepare(name, size)
            for batch in batches:
                timings = self._time(modules, kind, size, batch)
                for backend in self.backends:
                    ms_per_megapixel = timings[backend].median_ms / (batch * size[0] * size[1] / 1e6)
                    rows.append(
                        SweepRow(
                            model=name,
                            backend=backend,
                            size=size,
                            batch=batch,
                            macs=macs,
                            latency=timings[backend],
                            ms_per_megapixel=ms_per_megapixel,
                            growth_per_pixel=ms_per_megapixel / smallest.setdefault((backend, batch), ms_per_megapixel),
                            speedup=_speedup(timings, backend),
                            memory=self._memory(self._config(name, size, batch, backend=backend)),
                        )
                    )
            del modules
        return rows

    def train(self, name: str, size: Size, batch: int) -> list[TrainRow]:
        """One row per training setting: steps interleaved, memory with and without gradient checkpointing."""
        meta, shape = meta_model(name, self.model_kwargs), input_shape(self.model_kwargs, batch, size)
        targets = random_targets(train_output(meta, shape), self.device)
        model, x = build_model(name, self.model_kwargs, self.device), torch.randn(shape, device=self.device)
        steps = {setting: train_step(copy.deepcopy(model), x, targets, setting) for setting in SETTINGS}
        timings = interleaved(steps, self.warmup, self.repeats, synchronizer(self.device))
        del steps, model
        gc.collect()
        checkpointable = hasattr(meta, "set_grad_checkpointing")
        return [
            TrainRow(
                model=name,
                setting=setting,
                size=size,
                batch=batch,
                bf16=setting == "fast" and native_bf16(self.device),
                step=timings[setting],
                images_per_s=batch * 1e3 / timings[setting].median_ms,
                speedup=_speedup(timings, setting),
                memory=self._memory(self._config(name, size, batch, train=setting)),
                memory_checkpointed=self._memory(self._config(name, size, batch, train=setting, checkpointing=True))
                if checkpointable
                else None,
            )
            for setting in SETTINGS
        ]

    def _prepare(self, name: str, size: Size) -> dict[str, nn.Module]:
        """The model as each backend runs it, prepared with a batch-1 example of ``size``."""
        model = build_model(name, self.model_kwargs, self.device)
        example = torch.randn(input_shape(self.model_kwargs, 1, size), device=self.device)
        return {backend: prepare_backend(backend, model, example, self.window) for backend in self.backends}

    def _time(self, modules: Mapping[str, nn.Module], kind: str, size: Size, batch: int) -> dict[str, Timing]:
        x = torch.randn(input_shape(self.model_kwargs, batch, size), device=self.device)
        steps = {backend: inference_step(module, x, kind) for backend, module in modules.items()}
        return interleaved(steps, self.warmup, self.repeats, synchronizer(self.device))

    def _config(self, name: str, size: Size, batch: int, **what: Any) -> MemoryConfig:
        """The memory configuration of ``name`` at ``size`` and ``batch``; ``what``: its backend or training setting."""
        return MemoryConfig(name, size, batch, self.threads, model_kwargs=self.model_kwargs, window=self.window, **what)

    def _memory(self, config: MemoryConfig) -> Memory | None:
        """Peak memory of ``config``: a child process on the CPU, this process on CUDA; None when not measured."""
        if not self.memory:
            return None
        if self.device.type == "cpu":
            return measure_in_child(config)
        return measure_cuda(configured_step(config, self.device), self.device)


def _speedup(timings: Mapping[str, Timing], name: str) -> float:
    """Eager's median time over ``name``'s, both from the same interleaved rounds."""
    return timings["eager"].median_ms / timings[name].median_ms


def _percent(gflops: float, peak: float | None) -> float | None:
    return None if peak is None else 100 * gflops / peak


def _size(size: Sequence[int]) -> Size:
    if len(size) != 2 or min(size) < 1:
        raise DLAError(f"an input size is two positive numbers, H W (e.g. 512 1024), got {list(size)}")
    return (int(size[0]), int(size[1]))


def _check_at_least(minimum: int, **values: int) -> None:
    for key, value in values.items():
        if value < minimum:
            raise DLAError(f"{key} must be at least {minimum}, got {value}")


@contextmanager
def _num_threads(threads: int) -> Iterator[None]:
    """``torch.set_num_threads(threads)`` for the block, the previous number restored after it."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
