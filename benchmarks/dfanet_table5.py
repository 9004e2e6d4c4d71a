"""DFANet Table 5 (speed on Cityscapes) with our code on this machine: for every model we implement, at the
table's input sizes, parameters and multiply-adds next to the paper's, and our measured CPU latency and frames
per second (eager fp32 and the fast path, ``dla.bench``, batch 1, segmentation output up-sampled to the input
and argmax included) next to the paper's time on its GPU.

The papers measured on one NVIDIA Titan X (Maxwell/Pascal, fp32): DFANet's Table 5 and the Ladder DenseNet
paper's 31 Hz at 1024x448; our figures come from this machine's CPU, so only the ratios between models compare.
DeepLab in Table 5 is v2 (the table's only DeepLab); ours is v3 with ResNet-101, the closest we implement.
Run: ``python benchmarks/dfanet_table5.py [--threads N] [--repeats N]``.
"""

import argparse
from typing import NamedTuple

from dla.bench import bench


class Row(NamedTuple):
    label: str
    model: str
    size: tuple[int, int]  # H, W
    paper_gmacs: str
    paper_params: str
    paper_ms: str
    paper_fps: str


ROWS = (
    Row("DFANet A", "dfanet_a", (1024, 1024), "3.4", "7.8 MB", "10", "100"),
    Row("DFANet B", "dfanet_b", (1024, 1024), "2.1", "4.8 MB", "8", "120"),
    Row("DFANet A'", "dfanet_a", (512, 1024), "1.7", "7.8 MB", "6", "160"),
    Row("DeepLab (v2 in the table; ours v3-ResNet-101)", "deeplabv3_resnet101", (512, 1024), "457.8", "262.1 M", "4000", "0.25"),
    Row("LadderDenseNet-121 (Ladder paper, Sec. 5)", "ladder_densenet121", (448, 1024), "-", "-", "32", "31"),
    Row("DLA-34 2s (not in the table)", "dla34up", (1024, 2048), "-", "-", "-", "-"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(
        "| model | input (HxW) | paper GFLOPs | GMACs | paper params | params (M) | paper ms (fps), Titan X "
        "| eager fp32 ms (fps) | fast ms (fps) | speed-up |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    machine = None
    for row in ROWS:
        result = bench(
            [row.model],
            row.size,
            backends=("eager", "fast"),
            threads=args.threads,
            repeats=args.repeats,
            warmup=2,
            memory=False,
            model_kwargs={"num_classes": 19},
        )
        eager, fast = result.inference
        machine = result.machine
        print(
            f"| {row.label} | {row.size[0]}x{row.size[1]} | {row.paper_gmacs} | {eager.macs / 1e9:.2f} "
            f"| {row.paper_params} | {eager.params / 1e6:.2f} | {row.paper_ms} ({row.paper_fps}) "
            f"| {_ms_fps(eager.latency.median_ms)} | {_ms_fps(fast.latency.median_ms)} | {fast.speedup:.2f}x |"
        )
    assert machine is not None
    print(f"\n{machine['cpu']}, {machine['threads']} threads, torch {machine['torch']}, native bf16: {machine['native_bf16']}")


def _ms_fps(ms: float) -> str:
    return f"{ms:.0f} ({1e3 / ms:.2f})"


if __name__ == "__main__":
    main()
