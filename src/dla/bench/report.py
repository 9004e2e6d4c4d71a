"""The printed form of a ``BenchResult``: a title line and a table (header, rows of strings) per part; the
command line lays them out as text or markdown. Empty cells are values not measured."""

from .memory import Memory
from .results import BenchResult

Table = tuple[str, list[str], list[list[str]]]


def tables(result: BenchResult) -> list[Table]:
    """Inference, then the sweep and training tables where they were measured."""
    parts = [_inference(result)]
    if result.sweep:
        parts.append(_sweep(result))
    if result.train:
        parts.append(_train(result))
    return parts


def _cell(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _peak(memory: Memory | None) -> str:
    return "" if memory is None else _cell(memory.peak_mib, 0)


def _memory_name(result: BenchResult) -> str:
    return "peak alloc (MiB)" if result.machine["device"].startswith("cuda") else "peak RSS (MiB)"


def _machine(result: BenchResult) -> str:
    m = result.machine
    where = m["gpu"] or f"{m['cpu']}, {m['cores']} cores"
    return f"{where}, {m['threads']} threads, torch {m['torch']}"


def _inference(result: BenchResult) -> Table:
    s, peaks = result.settings, result.peaks
    bf16 = "" if peaks["bf16"] is None else f", bf16 {peaks['bf16']:.0f}"
    title = (
        f"Inference at {s['size'][0]}x{s['size'][1]} (HxW) on {_machine(result)}: latency at batch 1, throughput at "
        f"batch {s['batch']}, speed-up over eager fp32 (interleaved); {s['repeats']} timed runs after {s['warmup']} "
        f"warm-up. Matmul peak (GFLOP/s): fp32 {peaks['fp32']:.0f}{bf16}"
    )
    header = [
        "model",
        "backend",
        "output",
        "params (M)",
        "GMACs",
        "median (ms)",
        "p90 (ms)",
        f"img/s (batch {s['batch']})",
        "GFLOP/s",
        "% fp32 peak",
        "% bf16 peak",
        "speed-up",
        _memory_name(result),
        "before run (MiB)",
    ]
    rows = [
        [
            r.model,
            r.backend,
            r.output,
            _cell(r.params / 1e6, 2),
            _cell(r.macs / 1e9, 3),
            _cell(r.latency.median_ms, 2),
            _cell(r.latency.p90_ms, 2),
            _cell(r.images_per_s, 1),
            _cell(r.gflops, 1),
            _cell(r.percent_of_peak["fp32"], 1),
            _cell(r.percent_of_peak["bf16"], 1),
            _cell(r.speedup, 2),
            _peak(r.memory),
            "" if r.memory is None else _cell(r.memory.baseline_mib, 0),
        ]
        for r in result.inference
    ]
    return title, header, rows


def _sweep(result: BenchResult) -> Table:
    title = (
        "Sweep: median latency per size (HxW) and batch; ms per megapixel of input, and its growth over the smallest "
        "size (1.00: time grows linearly with the pixels)"
    )
    header = ["model", "backend", "size", "batch", "median (ms)", "ms/MP", "growth per pixel", "speed-up", _memory_name(result)]
    rows = [
        [
            r.model,
            r.backend,
            f"{r.size[0]}x{r.size[1]}",
            str(r.batch),
            _cell(r.latency.median_ms, 1),
            _cell(r.ms_per_megapixel, 1),
            _cell(r.growth_per_pixel, 2),
            _cell(r.speedup, 2),
            _peak(r.memory),
        ]
        for r in result.sweep
    ]
    return title, header, rows


def _train(result: BenchResult) -> Table:
    s = result.settings
    title = (
        f"Training steps (forward, loss, backward, SGD) at {s['size'][0]}x{s['size'][1]}, batch {s['batch']}: eager fp32 "
        "versus fast (channels_last, bf16 autocast where native, fused SGD), interleaved; memory without and with "
        "set_grad_checkpointing()"
    )
    header = ["model", "setting", "bf16", "img/s", "median step (ms)", "speed-up", _memory_name(result), "checkpointed"]
    rows = [
        [
            r.model,
            r.setting,
            "yes" if r.bf16 else "no",
            _cell(r.images_per_s, 2),
            _cell(r.step.median_ms, 1),
            _cell(r.speedup, 2),
            _peak(r.memory),
            _peak(r.memory_checkpointed),
        ]
        for r in result.train
    ]
    return title, header, rows
