"""Several processes training or evaluating as one: PyTorch's distributed engine (``torch.distributed``).

torchrun starts one process per device (``torchrun --nproc-per-node N -m dla train CONFIG``; ``dla train --nproc
N`` runs torchrun's elastic agent itself) and tells each its ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``. ``process_group``
joins the process group: NCCL on CUDA (one device per process, ``cuda:LOCAL_RANK``), Gloo on the CPU. A single
process (no torchrun, or one process) joins nothing, and every helper here is then a no-op.

Timeouts: a collective that waits longer than ``$DLA_DIST_TIMEOUT`` seconds (default 1800) fails instead of
waiting forever, so a rank that died outside torchrun (which itself stops every worker when one fails) does
not leave the others hanging.
"""

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import Tensor
from torch.utils.data import Dataset, Subset

from .errors import DLAError

TIMEOUT_VARIABLE = "DLA_DIST_TIMEOUT"
DEFAULT_TIMEOUT_SECONDS = 1800


@dataclass(frozen=True)
class Processes:
    """Where this process stands among those of the run: ``rank`` of ``world_size``, ``local_rank`` on its machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """The process that writes (logs, checkpoints, results): rank 0."""
        return self.rank == 0


@contextlib.contextmanager
def process_group(device: torch.device) -> Iterator[tuple[Processes, torch.device]]:
    """Join the process group torchrun describes in the environment for the block; this process's place and device.

    ``device`` is the device type chosen for the run (``cpu`` or ``cuda``); on CUDA each process takes the GPU
    of its ``LOCAL_RANK``. Without torchrun, or with one process, nothing is joined. A group this process had
    already joined (a caller's) is used and left to its owner.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        yield Processes(), device
        return
    processes = Processes(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        if processes.local_rank >= torch.cuda.device_count():
            raise DLAError(
                f"process {processes.rank} has LOCAL_RANK {processes.local_rank} but this machine has "
                f"{torch.cuda.device_count()} GPUs; start at most one process per GPU (--nproc-per-node)"
            )
        device = torch.device("cuda", processes.local_rank)
        torch.cuda.set_device(device)
    joined = not dist.is_initialized()
    if joined:
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=timeout(), device_id=device if device.type == "cuda" else None)
    try:
        yield processes, device
    finally:
        if joined:
            dist.destroy_process_group()


def wait_for_all() -> None:
    """Wait until every process has reached this point (a barrier); nothing to wait for in a single process."""
    if current().world_size > 1:
        dist.barrier()


def timeout() -> timedelta:
    """How long a collective may wait for the other processes: ``$DLA_DIST_TIMEOUT`` seconds, default 1800."""
    text = os.environ.get(TIMEOUT_VARIABLE, str(DEFAULT_TIMEOUT_SECONDS))
    try:
        seconds = float(text)
    except ValueError:
        raise DLAError(f"{TIMEOUT_VARIABLE} must be a number of seconds, got {text!r}") from None
    return timedelta(seconds=seconds)


def current() -> Processes:
    """This process's place in the process group it joined (rank 0 of 1 when it joined none)."""
    if not (dist.is_available() and dist.is_initialized()):
        return Processes()
    return Processes(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def launched_as_main() -> bool:
    """Whether torchrun started this process as rank 0 (or no torchrun started it), joined or not."""
    return os.environ.get("RANK", "0") == "0"


def is_main_process() -> bool:
    """Whether this process writes: rank 0, or the only process."""
    return current().main


def all_reduce_sum(tensor: Tensor) -> Tensor:
    """Sum ``tensor`` in place over all processes when a process group is joined; otherwise leave it.

    The tensor must live where the backend expects it (CUDA for NCCL, CPU for Gloo).
    """
    if current().world_size > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_gather_rows(tensor: Tensor) -> Tensor:
    """Every process's ``tensor`` (``N_rank x ...``, any ``N_rank``) concatenated along rows in rank order."""
    processes = current()
    if processes.world_size == 1:
        return tensor
    sizes = [torch.zeros(1, dtype=torch.int64, device=tensor.device) for _ in range(processes.world_size)]
    dist.all_gather(sizes, torch.tensor([tensor.shape[0]], device=tensor.device))
    longest = int(max(size.item() for size in sizes))
    padded = torch.zeros((longest, *tensor.shape[1:]), dtype=tensor.dtype, device=tensor.device)
    padded[: tensor.shape[0]] = tensor
    gathered = [torch.empty_like(padded) for _ in range(processes.world_size)]
    dist.all_gather(gathered, padded)
    return torch.cat([rows[: int(size.item())] for rows, size in zip(gathered, sizes, strict=True)])


def shard_indices(size: int) -> range:
    """This process's share of ``size`` items for evaluation: ``rank, rank + world_size, ...`` (all of them in a
    single process). The shares differ by one item at most and together hold each item once."""
    processes = current()
    return range(processes.rank, size, processes.world_size)


def shard(dataset: Dataset) -> Dataset:
    """This process's share of ``dataset`` (``shard_indices``); the dataset itself in a single process."""
    if current().world_size == 1:
        return dataset
    return Subset(dataset, shard_indices(len(dataset)))  # type: ignore[arg-type]


def launch(nproc: int, argv: Sequence[str]) -> None:
    """Run ``python -m dla ARGV`` in ``nproc`` processes on this machine under torchrun's elastic agent
    (``torchrun --standalone --nproc-per-node NPROC -m dla ARGV``); return when they all have finished."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    if nproc < 1:
        raise DLAError(f"--nproc must be at least 1, got {nproc}")
    args = get_args_parser().parse_args(["--standalone", f"--nproc-per-node={nproc}", "-m", "dla", *argv])
    try:
        run(args)
    except ChildFailedError as e:
        failures = "; ".join(f"rank {rank}: exit code {failure.exitcode}" for rank, failure in sorted(e.failures.items()))
        raise DLAError(f"{nproc} processes were started and some failed ({failures}); their errors are printed above") from None


__all__ = [
    "DEFAULT_TIMEOUT_SECONDS",
    "TIMEOUT_VARIABLE",
    "Processes",
    "all_gather_rows",
    "all_reduce_sum",
    "current",
    "is_main_process",
    "launch",
    "launched_as_main",
    "process_group",
    "shard",
    "shard_indices",
    "timeout",
    "wait_for_all",
]
