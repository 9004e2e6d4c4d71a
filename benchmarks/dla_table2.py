"""DLA Table 2 (compact models) with our code on this machine: parameters and multiply-adds next to the paper's,
and the CPU latency of each model at 224x224, eager fp32 and the fast path (``dla.optimize``), measured side by
side by ``dla.bench``. Run: ``python benchmarks/dla_table2.py [--threads N] [--repeats N]``."""

import argparse

from dla.bench import bench
from dla.models._paper import paper_figures

MODELS = ("dla46_c", "dla46x_c", "dla60x_c")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    result = bench(MODELS, (224, 224), backends=("eager", "fast"), threads=args.threads, repeats=args.repeats, memory=False)
    rows = {(row.model, row.backend): row for row in result.inference}
    print(f"{result.machine['cpu']}, {result.machine['threads']} threads, torch {result.machine['torch']}, batch 1\n")
    print("| model | paper params (M) | params (M) | paper FMAs (G) | MACs (G) | eager fp32 (ms) | fast (ms) | speed-up |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in MODELS:
        eager, fast, paper = rows[name, "eager"], rows[name, "fast"], paper_figures(name)
        print(
            f"| {name} | {paper.params:g} | {eager.params / 1e6:.2f} | {paper.macs:g} | {eager.macs / 1e9:.3f} "
            f"| {eager.latency.median_ms:.1f} | {fast.latency.median_ms:.1f} | {fast.speedup:.2f}x |"
        )


if __name__ == "__main__":
    main()
