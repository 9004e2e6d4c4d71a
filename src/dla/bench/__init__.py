"""``dla bench``: how fast and how large a model runs on this machine, measured against the machine's own limits.

``bench(models, size, batch, backends=...)`` returns a ``BenchResult`` (``.save(path)`` writes JSON;
``report.tables(result)`` the printed tables). The protocol is in ``docs/benchmarks.md``; one module per part:
``timing`` (interleaved repetitions), ``peak`` (matmul peaks), ``workload`` (what is timed), ``train`` (the
training step), ``memory`` (peak memory in a child process), ``machine``, ``results``, ``report``, ``run``.
"""

from .report import tables
from .results import BenchResult, InferenceRow, SweepRow, TrainRow
from .run import SWEEP_BATCHES, SWEEP_SIZES, bench

__all__ = ["SWEEP_BATCHES", "SWEEP_SIZES", "BenchResult", "InferenceRow", "SweepRow", "TrainRow", "bench", "tables"]
