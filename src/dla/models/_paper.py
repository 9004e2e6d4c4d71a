"""What the papers report for the registered models, for ``dla models`` to print next to the measured figures
(and for the tests and ``benchmarks/dfanet_figures.py`` that compare them). Kept apart from the modules: a
model does not need its paper's numbers to run.

``PAPER_FIGURES`` is keyed by registered model name (default arguments); ``dfanet_figures`` gives the rows of
DFANet's ablation tables, keyed by configuration.
"""

from dataclasses import dataclass

BYTES_PER_PARAM = 4  # DFANet's "Params" are megabytes of float32 weights (docs/dfanet.md)

# DFANet Tables 2-5 at 1024x1024: (variant, backbones, HL, LL, FC attention) -> (the paper's "Params" in MB,
# multiply-adds in G); Table 2 gives no size for the backbones alone, Table 5's DFANet A' is DFANet A at
# 512x1024 (1.7G).
DFANET_TABLES: dict[tuple[str, int, bool, bool, bool], tuple[float | None, float]] = {
    ("A", 1, False, False, False): (None, 1.6),
    ("B", 1, False, False, False): (None, 0.83),
    ("A", 1, False, False, True): (2.1, 1.6),
    ("A", 2, False, False, True): (4.9, 2.4),
    ("A", 3, False, False, True): (7.6, 2.6),
    ("A", 4, False, False, True): (10.2, 2.7),
    ("B", 1, False, False, True): (1.4, 0.83),
    ("B", 2, False, False, True): (3.1, 1.2),
    ("B", 3, False, False, True): (4.7, 1.4),
    ("B", 4, False, False, True): (6.3, 1.5),
    ("A", 2, True, False, True): (5.0, 2.5),
    ("A", 2, True, True, True): (5.1, 3.2),
    ("A", 3, True, False, True): (7.7, 2.7),
    ("A", 3, True, True, True): (7.8, 3.4),  # Table 5: DFANet A
    ("B", 3, True, False, True): (4.9, 1.5),
    ("B", 3, True, True, True): (4.8, 2.1),  # Table 5: DFANet B (Table 4: 4.9)
}


@dataclass(frozen=True)
class PaperFigures:
    """A paper's figures for one model; ``None`` where the paper gives none."""

    params: float | None = None  # millions of parameters
    macs: float | None = None  # billions of multiply-adds at input_size
    input_size: tuple[int, int] | None = None  # (H, W) of the multiply-add figure


def dfanet_figures(variant: str, num_backbones: int, high_level: bool, low_level: bool, fc_attention: bool) -> PaperFigures:
    """DFANet's Tables 2-5 for a configuration (``"A"`` or ``"B"``, 1-4 backbones, HL, LL, FC attention) at
    1024x1024; its "Params" read as megabytes of float32 weights, so ``params`` is that figure divided by 4."""
    megabytes, macs = DFANET_TABLES.get((variant, num_backbones, high_level, low_level, fc_attention), (None, None))
    return PaperFigures(
        params=None if megabytes is None else megabytes / BYTES_PER_PARAM,
        macs=macs,
        input_size=None if macs is None else (1024, 1024),
    )


PAPER_FIGURES: dict[str, PaperFigures] = {
    # DLA Table 2: parameters and FMAs at 224x224
    "dla46_c": PaperFigures(1.3, 0.58, (224, 224)),
    "dla46x_c": PaperFigures(1.1, 0.53, (224, 224)),
    "dla60x_c": PaperFigures(1.3, 0.59, (224, 224)),
    # Krešo et al. Tables 2 and 5: "8M" and "13M"
    "densenet121": PaperFigures(8.0),
    "densenet169": PaperFigures(13.0),
    # DeepLabv3 with ResNet-101 and ASPP, 21 classes
    "deeplabv3_resnet101": PaperFigures(58.04),
    "dfanet_a": dfanet_figures("A", 3, True, True, True),
    "dfanet_b": dfanet_figures("B", 3, True, True, True),
}


def paper_figures(name: str) -> PaperFigures:
    """The paper's figures for registered model ``name`` with its default arguments (all ``None`` if none)."""
    return PAPER_FIGURES.get(name, PaperFigures())


__all__ = ["BYTES_PER_PARAM", "DFANET_TABLES", "PAPER_FIGURES", "PaperFigures", "dfanet_figures", "paper_figures"]
