"""Timing several steps side by side: warm-up, then interleaved timed repetitions, summarised by median and p90.

The steps are run round-robin (``a, b, a, b, ...``), so that a change of the machine's load or clock during the
run affects every step alike, and a ratio of their medians compares them under the same conditions. Each
timed repetition is one call followed by the device's synchronisation (CUDA runs asynchronously), measured
with ``time.perf_counter``; the garbage collector is paused while timing, as ``timeit`` does.
"""

import gc
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch

Step = Callable[[], object]


@dataclass
class Timing:
    """Wall-clock times of one step's timed repetitions, in milliseconds."""

    median_ms: float
    p90_ms: float
    samples_ms: list[float]


def summarize(samples_ms: list[float]) -> Timing:
    """Median and 90th percentile (linear interpolation) of the samples."""
    return Timing(float(np.median(samples_ms)), float(np.percentile(samples_ms, 90)), samples_ms)


def synchronizer(device: torch.device) -> Callable[[], None]:
    """What waits for the device's queued work: ``torch.cuda.synchronize`` on CUDA, nothing on the CPU."""
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def interleaved(steps: Mapping[str, Step], warmup: int, repeats: int, sync: Callable[[], None]) -> dict[str, Timing]:
    """Run every step ``warmup`` times, then time ``repeats`` rounds of one call of each step, round-robin.

    Warm-up rounds are interleaved as well and not timed: they absorb one-time costs (allocator growth,
    kernel selection, ``torch.compile``'s compilation).
    """
    for _ in range(warmup):
        for step in steps.values():
            step()
            sync()
    samples: dict[str, list[float]] = {name: [] for name in steps}
    gc.collect()
    gc_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            for name, step in steps.items():
                start = time.perf_counter()
                step()
                sync()
                samples[name].append(1e3 * (time.perf_counter() - start))
    finally:
        if gc_enabled:
            gc.enable()
    return {name: summarize(times) for name, times in samples.items()}
