"""Memory at a whole Cityscapes frame (2048 wide, 1024 high): what the Ladder DenseNet paper argues, and what
inference with DLA-34 2s costs, eager, fast and tiled.

Every figure is the peak resident memory of a fresh child process (``dla.bench.memory``: interpreter, torch,
model, input, then what running the step adds; 19 classes, batch 1), measured one configuration at a time:

- DLA-34 2s inference: eager fp32, the fast path, and the fast path tiled into 512x1024 windows overlapping by a
  third (``dla.inference.tiled``); with ``--checkpoint`` (a trained CamVid model) also the share of pixels where
  tiled inference gives whole-image inference's argmax, on CamVid validation frames resized to 1024x2048.
- One training step (forward, backward, SGD) of DLA-34 2s with and without gradient checkpointing of its HDA
  trees, and of LadderDenseNet-121, whose paper trains on whole 2048x1024 images (batch 2 over two 8 GB GPUs).
- LadderDenseNet-121 inference, eager and fast.

Run: ``DLA_DATA_ROOT=../shared/data python benchmarks/memory_2048x1024.py [--checkpoint CKPT] [--threads N]
[--tiles H W OVERLAP ...] [--agreement-only]``.
"""

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from trained import trained_model

from dla.bench.memory import MemoryConfig, measure_in_child
from dla.inference import optimize
from dla.inference.tiled import SlidingWindow

FRAME = (1024, 2048)  # H, W
WINDOW = (512, 1024)
SEG = {"num_classes": 19}
CONFIGS = (
    ("DLA-34 2s inference, eager fp32, whole frame", dict(model="dla34up")),
    ("DLA-34 2s inference, fast, whole frame", dict(model="dla34up", backend="fast")),
    ("DLA-34 2s inference, fast, 512x1024 windows", dict(model="dla34up", backend="fast", window=WINDOW)),
    ("DLA-34 2s inference, eager fp32, 512x1024 windows", dict(model="dla34up", window=WINDOW)),
    ("DLA-34 2s training step, eager fp32", dict(model="dla34up", train="eager")),
    ("DLA-34 2s training step, eager fp32, gradient checkpointing", dict(model="dla34up", train="eager", checkpointing=True)),
    ("LadderDenseNet-121 inference, eager fp32", dict(model="ladder_densenet121")),
    ("LadderDenseNet-121 inference, fast", dict(model="ladder_densenet121", backend="fast")),
    ("LadderDenseNet-121 training step, eager fp32", dict(model="ladder_densenet121", train="eager")),
)


def tiled_agreement(checkpoint: Path, images: int, window: tuple[int, int] = WINDOW, overlap: float = 1 / 3) -> float:
    """Share of pixels whose argmax is the same with ``window`` tiles as with the whole frame (fast path, both),
    over the first ``images`` CamVid validation frames resized to ``FRAME``."""
    model, _, _, data = trained_model(checkpoint)
    agree = pixels = 0
    for index in range(images):
        image = F.interpolate(data[index][0][None], size=FRAME, mode="bilinear", align_corners=False)
        fast = optimize(model, example=image[..., : window[0], : window[1]])
        whole, tiled = fast(image).argmax(1), SlidingWindow(fast, window, overlap)(image).argmax(1)
        agree, pixels = agree + int((whole == tiled).sum()), pixels + whole.numel()
    return agree / pixels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--checkpoint", type=Path, help="a trained CamVid checkpoint for tiled-vs-whole agreement")
    parser.add_argument("--images", type=int, default=5)
    parser.add_argument(
        "--tiles",
        type=float,
        nargs=3,
        action="append",
        metavar=("H", "W", "OVERLAP"),
        help="window and overlap of a tiled-vs-whole agreement (default 512 1024 0.333)",
    )
    parser.add_argument("--agreement-only", action="store_true", help="skip the memory table")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not args.agreement_only:
        print_memory(args.threads)
    if args.checkpoint:
        print(f"\nTiled vs whole-frame argmax, {args.images} CamVid val frames resized to {FRAME[1]}x{FRAME[0]}, fast path:\n")
        print("| window (HxW) | overlap | pixels agreeing |")
        print("| --- | --- | --- |")
        for height, width, overlap in args.tiles or [(*WINDOW, 1 / 3)]:
            agreement = tiled_agreement(args.checkpoint, args.images, (int(height), int(width)), overlap)
            print(f"| {int(height)}x{int(width)} | {overlap:.2f} | {100 * agreement:.3f} % |")


def print_memory(threads: int) -> None:
    """The table of peak resident memory, one child process per configuration."""
    print(f"Peak resident memory at {FRAME[1]}x{FRAME[0]} (W x H), batch 1, 19 classes, {threads} threads\n")
    print("| configuration | peak RSS (MiB) | before the step (MiB) |")
    print("| --- | --- | --- |")
    for label, config in CONFIGS:
        memory = measure_in_child(MemoryConfig(size=FRAME, batch=1, threads=threads, model_kwargs=SEG, **config))
        print(f"| {label} | {memory.peak_mib:.0f} | {memory.baseline_mib:.0f} |")


if __name__ == "__main__":
    main()
