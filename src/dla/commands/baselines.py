"""Classical baselines scored by the same benchmark as the models (``dla baseline``), and results of several
methods drawn together (``dla pr-curve``), as the paper's Fig. 7 compares methods.

A task offers its baselines by name (``Task.baselines``); ``dla baseline`` runs ``gradient``, the boundaries'
Gaussian gradient magnitude of the image, thinned and scored like a model's boundary map. It learns nothing, so
any trained boundary model must beat it; a benchmark that ranked it high would be broken. ``dla pr-curve`` draws
results with their task's ``Task.compare`` (boundaries: the precision-recall curves).
"""

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..data import build_dataset
from ..engine.config_loader import resolve_data_root
from ..engine.results import write_result
from ..errors import DLAError
from ..tasks import TASKS, get_task

BASELINE = "gradient"  # the method of dla baseline


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
    """The scores of the gradient-magnitude baseline on ``split`` of a dataset whose task offers it (boundaries).

    ``root`` defaults to ``$DLA_DATA_ROOT/<dataset>``. With ``output``, the scores are written as JSON and
    the task's pictures next to them (``<output stem>_pr_curve.png``).
    """
    data = build_dataset(dataset, resolve_data_root(dataset, root), split)
    task = get_task(data.task)
    if BASELINE not in task.baselines:
        offering = " or ".join(name for name, other in TASKS.items() if BASELINE in other.baselines)
        raise DLAError(f"dataset {dataset!r} is a {data.task} dataset; the {BASELINE} baseline needs a {offering} dataset")
    description, scores = task.baselines[BASELINE](data, thresholds=thresholds, tolerance=tolerance, sigma=sigma)
    result = {"model": description, "task": task.name, "dataset": dataset, "split": split, **scores}
    if output is not None:
        write_result(Path(output), result, task.draw(result, data.meta.classes))
    return result


def draw_pr_curves(results: Sequence[str], out: str) -> Path:
    """Draw results of one task (JSON of ``dla eval`` / ``dla baseline``) into one picture at ``out`` with the task's
    ``compare`` (boundaries: the precision-recall curves); returns its path. A result that names no task (written
    before 0.2) is drawn as one of the task the others name."""
    curves, named = [], set()
    for path in results:
        try:
            result = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            raise DLAError(f"{path}: cannot read the result ({e})") from None
        if not isinstance(result, dict):
            raise DLAError(f"{path}: not a result of dla eval or dla baseline (write one with dla eval --output)")
        named.update([result["task"]] if "task" in result else [])
        curves.append((result.get("model", Path(path).stem), result))
    if len(named) != 1:
        found = ", ".join(sorted(named)) or "none"
        raise DLAError(f"the results must name one task (found: {found}); give results written by dla eval --output")
    get_task(named.pop()).compare(curves).save(out)
    return Path(out)
