"""What keeping ``BilinearUpsample`` in fp32 under CPU bf16 autocast buys: one training step (forward, cross-entropy,
backward, Adam) of a model, with the up-sampling in fp32 (the library's way) and in bf16 (PyTorch's autocast
default), interleaved in one process, the median of ``--repeats`` steps each, and their ratio; full fp32 beside
them. Needs a CPU with native bf16 (``dla.inference.native_bf16``); the figures are in ``configs/README.md``
(``optim.amp``). Run: ``OMP_NUM_THREADS=2 python benchmarks/autocast_upsampling.py``
(defaults: ``dlaup`` on ``dla46_c``, batch 16 of 64x64, the demo's training step)."""

import argparse
import contextlib
import statistics
import time
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from dla.layers.upsample import BilinearUpsample
from dla.models import create_model


@contextlib.contextmanager
def bf16_upsampling() -> Iterator[None]:
    """``BilinearUpsample`` as plain ``ConvTranspose2d``, which autocast runs in bf16."""
    kept = BilinearUpsample.forward
    BilinearUpsample.forward = nn.ConvTranspose2d.forward  # type: ignore[method-assign]
    try:
        yield
    finally:
        BilinearUpsample.forward = kept  # type: ignore[method-assign]


def step_seconds(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, amp: bool) -> float:
    start = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        logits = model(x)
    F.cross_entropy(logits.float(), y).backward()
    optimizer.step()
    optimizer.zero_grad()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="dlaup")
    parser.add_argument("--backbone", default="dla46_c", help="for dlaup; empty for other models")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    kwargs = {"backbone": args.backbone} if args.backbone else {}
    model = create_model(args.model, num_classes=6, **kwargs)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, 3, args.size, args.size, generator=generator)
    y = torch.randint(0, 6, (args.batch, args.size, args.size), generator=generator)
    modes = {"bf16, up-sampling fp32": (True, False), "bf16, up-sampling bf16": (True, True), "fp32": (False, False)}
    times: dict[str, list[float]] = {mode: [] for mode in modes}
    for repeat in range(args.repeats + 2):  # the first two rounds warm up
        for mode, (amp, bf16_up) in modes.items():
            with bf16_upsampling() if bf16_up else contextlib.nullcontext():
                seconds = step_seconds(model, optimizer, x, y, amp)
            if repeat >= 2:
                times[mode].append(seconds)
    baseline = statistics.median(times["bf16, up-sampling bf16"])
    print(f"{args.model} {kwargs}, batch {args.batch} of {args.size}x{args.size}, {torch.get_num_threads()} threads")
    print("| training step | median (s) | x bf16 up-sampling |")
    print("| --- | --- | --- |")
    for mode, samples in times.items():
        median = statistics.median(samples)
        print(f"| {mode} | {median:.3f} | {median / baseline:.2f} |")


if __name__ == "__main__":
    main()
