"""Training throughput of one process with 2 threads versus 2 processes with 1 thread each (docs/distributed.md).

    DLA_DATA_ROOT=../shared/data python benchmarks/distributed_throughput.py [--config configs/camvid_cpu.yaml] \
        [--iterations 10] [--repeats 3]

Each measurement is a torchrun launch of this script (``--worker``) that builds the recipe's data, model and
optimizer as ``dla train`` does, wraps them as the trainer does (``distribute``: DistributedDataParallel,
SyncBatchNorm), trains ``--warmup`` iterations, then times ``--iterations`` iterations of the recipe's
global batch between two barriers. The settings (1 process x 2 threads; 2 processes x 1 thread, with and
without SyncBatchNorm) alternate (``--repeats`` rounds), so that all see the same machine; the table gives
each setting's median images per second and its ratio to the first setting's.
Writes ``docs/results/distributed_cpu.json`` and ``.md``.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
# name, processes, threads per process, config overrides
SETTINGS = (
    ("1 process x 2 threads", 1, 2, ()),
    ("2 processes x 1 thread", 2, 1, ()),
    ("2 processes x 1 thread, model.sync_bn=false", 2, 1, ("model.sync_bn=false",)),
)


def worker(args: argparse.Namespace) -> None:
    from dla import distributed
    from dla.engine.config_loader import load_config
    from dla.engine.datasets import build_datasets
    from dla.engine.optimizer import build_optimizer, learning_rate, parameter_groups
    from dla.engine.runtime import seed_everything
    from dla.engine.sampling import make_train_loader
    from dla.engine.setup import distribute
    from dla.engine.step import TrainStep, groups_of
    from dla.tasks import get_task

    cfg = load_config(args.config, ["out_dir=/tmp/dla-throughput", "device=cpu", *args.set])
    with distributed.process_group(torch.device("cpu")) as (processes, device):
        seed_everything(cfg.seed)
        task = get_task(cfg.task)
        train_set, _ = build_datasets(cfg, task)
        loader, _ = make_train_loader(train_set, cfg, device, processes)
        model, _ = task.build_model(cfg, train_set.meta, None)
        lr = learning_rate(cfg.optim, cfg.data.batch_size)
        optimizer = build_optimizer(parameter_groups(model, task, lr, cfg.optim.backbone_lr_factor), cfg.optim)
        model, net = distribute(model, processes, device, bool(cfg.model.sync_bn))
        scaler = torch.amp.GradScaler("cpu", enabled=False)
        criterion = task.criterion(cfg, train_set.meta, None)
        train_step = TrainStep(net, model, optimizer, criterion, scaler, None, cfg.optim.aux_weight, cfg.optim.grad_clip, device)
        net.train()
        batches = groups_of(loader, cfg.optim.accumulate)

        def step() -> None:
            train_step(next(batches))

        for _ in range(args.warmup):
            step()
        distributed.wait_for_all()
        start = time.perf_counter()
        for _ in range(args.iterations):
            step()
        distributed.wait_for_all()
        seconds = time.perf_counter() - start
        if processes.main:
            Path(args.json).write_text(json.dumps({"seconds": seconds, "images": args.iterations * cfg.data.batch_size}))


def measure(args: argparse.Namespace, nproc: int, threads: int, overrides: tuple[str, ...], out: Path) -> float:
    """Images per second of one torchrun launch of the worker."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", __file__, "--worker"]
    command += [f"--set={override}" for override in overrides]
    command += ["--config", args.config, "--iterations", str(args.iterations), "--warmup", str(args.warmup), "--json", str(out)]
    subprocess.run(command, env={**os.environ, "OMP_NUM_THREADS": str(threads)}, check=True, cwd=ROOT)
    result = json.loads(out.read_text())
    return result["images"] / result["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/camvid_cpu.yaml")
    parser.add_argument("--iterations", type=int, default=10, help="timed iterations per launch")
    parser.add_argument("--warmup", type=int, default=2, help="untimed iterations first")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of the two settings, alternating")
    parser.add_argument("--json", default="/tmp/dla-throughput.json", help="(worker) where rank 0 writes its timing")
    parser.add_argument("--out", default=str(ROOT / "docs" / "results" / "distributed_cpu"), help="results, without suffix")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--set", action="append", default=[], help=argparse.SUPPRESS)  # (worker) config overrides
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    rates: dict[str, list[float]] = {name: [] for name, _, _, _ in SETTINGS}
    for _ in range(args.repeats):
        for name, nproc, threads, overrides in SETTINGS:
            rates[name].append(measure(args, nproc, threads, overrides, Path(args.json)))
            print(f"{name}: {rates[name][-1]:.2f} images/s", flush=True)
    medians = {name: statistics.median(values) for name, values in rates.items()}
    baseline = medians[SETTINGS[0][0]]
    command = "DLA_DATA_ROOT=../shared/data python benchmarks/distributed_throughput.py " + " ".join(
        f"--{key} {getattr(args, key)}" for key in ("config", "iterations", "repeats")
    )
    rows = [
        f"| {name} | {medians[name]:.2f} | {medians[name] / baseline:.2f}x | {', '.join(f'{r:.2f}' for r in rates[name])} |"
        for name in rates
    ]
    table = "\n".join(
        [
            f"Training throughput, `{args.config}` (global batch per iteration as in the recipe), "
            f"{args.iterations} timed iterations after {args.warmup}, {args.repeats} alternating rounds; `{command}`",
            "",
            "| setting | images/s (median) | vs 1 process | each round |",
            "| --- | --- | --- | --- |",
            *rows,
        ]
    )
    print(table)
    out = Path(args.out)
    out.with_suffix(".md").write_text(table + "\n")
    out.with_suffix(".json").write_text(
        json.dumps({"command": command, "images_per_second": rates, "medians": medians}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
