"""Classical baselines scored by the same benchmark as the models (``dla baseline``), and precision-recall
curves of several results drawn together (``dla pr-curve``), as the paper's Fig. 7 compares methods.

``gradient``: the Gaussian gradient magnitude of the image (``dla.tasks.boundaries.gradient_magnitude``),
thinned and scored like a model's boundary map. It learns nothing, so any trained boundary model must beat
it; a benchmark that ranked it high would be broken.
"""

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..data import build_dataset
from ..engine.config_loader import resolve_data_root
from ..engine.results import write_result
from ..errors import DLAError
from ..tasks.boundaries import draw_pr_curve, evaluate_gradient_baseline


def evaluate_baseline(
    dataset: str,
    split: str = "val",
    *,
    root: str | None = None,
    sigma: float = 1.0,
    thresholds: int = 99,
    tolerance: float = 0.0075,
    output: str | None = None,
) -> dict[str, Any]:
    """The BSDS scores of the gradient-magnitude baseline on a boundary dataset's ``split``.

    ``root`` defaults to ``$DLA_DATA_ROOT/<dataset>``. With ``output``, the scores are written as JSON and
    the precision-recall curve next to them (``<output stem>_pr_curve.png``).
    """
    data = build_dataset(dataset, resolve_data_root(dataset, root), split)
    if data.task != "boundaries":
        raise DLAError(f"dataset {dataset!r} is a {data.task} dataset; the gradient baseline needs a boundary dataset")
    scores = evaluate_gradient_baseline(data, thresholds, tolerance, sigma)
    result = {"model": f"gradient magnitude (sigma {sigma:g})", "dataset": dataset, "split": split, **scores}
    if output is not None:
        write_result(Path(output), result, {"pr_curve": draw_pr_curve([(result["model"], result)])})
    return result


def draw_pr_curves(results: Sequence[str], out: str) -> Path:
    """Draw the precision-recall curves of boundary results (JSON of ``dla eval`` / ``dla baseline``) into
    one picture at ``out``; returns its path."""
    curves = []
    for path in results:
        try:
            result = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            raise DLAError(f"{path}: cannot read the result ({e})") from None
        if not isinstance(result, dict) or not {"recall", "precision", "ods", "ods_recall", "ods_precision"} <= result.keys():
            raise DLAError(f"{path}: not a boundary result with a precision-recall curve (write one with dla eval --output)")
        curves.append((result.get("model", Path(path).stem), result))
    draw_pr_curve(curves).save(out)
    return Path(out)
