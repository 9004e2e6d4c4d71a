"""The ``dla`` command line: argument parsing and one function per subcommand."""

import argparse
import sys
from typing import List, Optional

import torch

from .complexity import count_macs, count_params
from .errors import DLAError
from .models import create_model, list_models


def cmd_models(args: argparse.Namespace) -> None:
    """Print the registered models: name, the paper's name, block, parameters, multiply-adds."""
    names = list_models(args.pattern)
    if not names:
        raise DLAError(f"no model matches {args.pattern!r}; known models: {', '.join(list_models())}")
    size = args.input_size
    header = ["name", "paper name", "block", "params (M)", f"MACs at {size}x{size} (G)"]
    rows = []
    for name in names:
        with torch.device("meta"):
            model = create_model(name)
        rows.append([
            name,
            model.pretrained_cfg.paper_name,
            getattr(model, "block_name", ""),
            f"{count_params(model) / 1e6:.2f}",
            f"{count_macs(model.eval(), (1, 3, size, size)) / 1e9:.3f}",
        ])
    print(_table(header, rows, args.format))


def _table(header: List[str], rows: List[List[str]], fmt: str) -> str:
    if fmt == "markdown":
        lines = [header, ["---"] * len(header)] + rows
        return "\n".join("| " + " | ".join(row) + " |" for row in lines)
    widths = [max(len(row[i]) for row in [header] + rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header] + rows)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dla", description="Deep Layer Aggregation networks (Yu et al., CVPR 2018).")
    commands = parser.add_subparsers(dest="command", required=True)

    models = commands.add_parser("models", help="list the models with their size and cost")
    models.add_argument("pattern", nargs="?", default="*", help="shell-style name pattern, e.g. 'dla*x*'")
    models.add_argument("--input-size", type=int, default=224, help="square input side for multiply-adds")
    models.add_argument("--format", choices=("text", "markdown"), default="text")
    models.set_defaults(func=cmd_models)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except DLAError as e:
        print(f"dla: error: {e}", file=sys.stderr)
        return 2
    return 0
