"""DFANet's Tables 2-5 row by row: the paper's "Params" (megabytes of float32 weights) and multiply-adds next
to the model's, at the tables' input sizes (docs/dfanet.md). Run: ``python benchmarks/dfanet_figures.py``."""

import torch

from dla.complexity import count_macs, count_params
from dla.models import create_model
from dla.models._paper import BYTES_PER_PARAM, DFANET_TABLES


def main() -> None:
    rows = [(key, figures, (1024, 1024)) for key, figures in DFANET_TABLES.items()]
    rows.append((("A", 3, True, True, True), (7.8, 1.7), (512, 1024)))  # Table 5: DFANet A' at 512x1024
    print("| row | input | paper MB | measured MB (params) | paper MACs (G) | measured MACs (G) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for (variant, backbones, high, low, attention), (megabytes, macs), size in rows:
        with torch.device("meta"):
            model = create_model(
                f"dfanet_{variant.lower()}",
                num_classes=19,
                num_backbones=backbones,
                high_level=high,
                low_level=low,
                fc_attention=attention,
            ).eval()
        params, measured = count_params(model), count_macs(model, (1, 3, *size)) / 1e9
        size_mb = BYTES_PER_PARAM * params / 1e6
        paper_mb = "-" if megabytes is None else f"{megabytes:g}"
        mb = (
            f"({params / 1e6:.3f}M)"
            if megabytes is None
            else f"{size_mb:.2f} ({params / 1e6:.3f}M) {100 * (size_mb / megabytes - 1):+.1f}%"
        )
        name = model.pretrained_cfg.paper_name + ("'" if size != (1024, 1024) else "")
        difference = 100 * (measured / macs - 1)
        print(f"| {name} | {size[0]}x{size[1]} | {paper_mb} | {mb} | {macs:g} | {measured:.3f} ({difference:+.1f}%) |")


if __name__ == "__main__":
    main()
