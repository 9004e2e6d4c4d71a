"""One process of a multi-process test, started by torchrun (``tests/test_distributed.py``).

``python -m torch.distributed.run --standalone --nproc-per-node 2 tests/distributed_worker.py SPEC_JSON``, where
the spec says what to do:

- ``{"mode": "train", "out_dir": ..., "overrides": [...], "data": "squares" | "shades", "resume": bool,
  "trip": {"rank": r, "after": n, "crash": bool}, "audit": path}``: ``train`` on the tiny datasets of
  ``engine_runs``; with ``trip``, rank ``r`` sends SIGTERM to itself (or raises, with ``crash``) when it loads
  its ``n + 1``-th sample; with ``audit``, every rank but 0 records the files it opens for writing or creates
  under the run's parent folder into ``<audit>.rank<r>.json``.
- ``{"mode": "eval", "out": path, "boundary_root": ...}``: the evaluation functions of the three tasks (and a
  float64 ``CpuSyncBatchNorm`` check) under the process group; rank 0 writes their results to ``out``.
"""

import atexit
import json
import os
import signal
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from engine_runs import quick_config, shades, squares
from evaluation_runs import evaluations

RANK = int(os.environ.get("RANK", "0"))


class Tripwire(torch.utils.data.Dataset):
    """``dataset`` that, on one rank, sends SIGTERM to its own process (or raises) at its ``after + 1``-th item."""

    def __init__(self, dataset, rank: int, after: int, crash: bool) -> None:
        self.dataset, self.meta, self.calls = dataset, dataset.meta, 0
        self.armed, self.after, self.crash = rank == RANK, after, crash

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        self.calls += 1
        if self.armed and self.calls == self.after + 1:
            if self.crash:
                raise RuntimeError(f"rank {RANK} crashes on purpose")
            os.kill(os.getpid(), signal.SIGTERM)
        return self.dataset[index]


def watch_writes(root: Path, report: Path) -> None:
    """Record the files this process opens for writing, or creates, under ``root``; write them to ``report`` at exit."""
    written: list[str] = []
    flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flag = args
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (isinstance(flag, int) and flag & flags)
            if writes and str(path).startswith(str(root)):
                written.append(str(path))
        elif event in ("os.mkdir", "os.rename", "os.replace") and str(args[0]).startswith(str(root)):
            written.append(str(args[0]))

    sys.addaudithook(hook)
    atexit.register(lambda: report.write_text(json.dumps(list(written))))  # after this, records no longer matter


def run_training(spec: dict) -> None:
    from dla.engine.trainer import train

    datasets = squares() if spec.get("data", "squares") == "squares" else shades()
    train_set, val_set = datasets
    if "trip" in spec:
        train_set = Tripwire(train_set, **spec["trip"])
    if "audit" in spec and RANK != 0:
        watch_writes(Path(spec["out_dir"]).parent, Path(f"{spec['audit']}.rank{RANK}.json"))
    cfg = quick_config(Path(spec["out_dir"]), *spec["overrides"])
    try:
        train(cfg, resume=spec.get("resume", False), datasets=(train_set, val_set))
    except KeyboardInterrupt:
        sys.exit(130)


def run_evaluation(spec: dict) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    results = evaluations(Path(spec["boundary_root"]))
    if dist.get_rank() == 0:
        Path(spec["out"]).write_text(json.dumps(results))
    dist.destroy_process_group()


if __name__ == "__main__":
    spec = json.loads(sys.argv[1])
    {"train": run_training, "eval": run_evaluation}[spec["mode"]](spec)
