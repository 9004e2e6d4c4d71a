"""What each loss of ``optim.loss`` costs beside cross-entropy: forward and backward of the loss alone on one batch
of CamVid training crops' size (8 x 11 x 360 x 480 logits, one thread), the median of 3 runs, and its ratio to
``ce`` measured in the same process (docs/segmentation.md, "Losses and class weights").
Run: ``OMP_NUM_THREADS=1 python benchmarks/loss_cost.py``."""

import statistics
import time

import torch

from dla.losses import SOFTMAX_LOSSES

VARIANTS = [("ce", {}), ("ohem", {}), ("focal", {}), ("dice", {}), ("lovasz", {}), ("lovasz", {"per_image": True})]


def seconds(name: str, options: dict, logits: torch.Tensor, target: torch.Tensor) -> float:
    runs = []
    for _ in range(3):
        x = logits.clone().requires_grad_()
        start = time.perf_counter()
        SOFTMAX_LOSSES[name](x, target, **options).backward()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def main() -> None:
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(8, 11, 360, 480, generator=generator)
    target = torch.randint(0, 11, (8, 360, 480), generator=generator)
    target[:, :20] = 255
    seconds("ce", {}, logits, target)  # a first run to warm up the allocator
    baseline = seconds("ce", {}, logits, target)
    print("| loss | forward + backward (s) | x ce |")
    print("| --- | --- | --- |")
    for name, options in VARIANTS:
        cost = seconds(name, options, logits, target)
        label = name + "".join(f", {key}: {value}".lower() for key, value in options.items())
        print(f"| `{label}` | {cost:.2f} | {cost / baseline:.1f} |")


if __name__ == "__main__":
    main()
