"""Training curves drawn with matplotlib: the loss per iteration and a validation score per epoch.

Reads the training log, one JSON object per line; records with ``iteration`` and ``loss`` make the loss
curve, records with ``epoch`` and ``val_<score>`` (``val_miou``, ``val_top1``, ``val_ods``) the score's
curve; other records and keys are ignored. Every point has a marker, so a curve of one point shows; the axes
are matplotlib's autoscaled ones (a lone value gets a small span around it), with integer ticks for iterations
and epochs and the score's axis kept within [0, 1]; a chart without points says so, without axes ticks.
"""

import json
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DLAError
from .visualize import figure_image, new_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

SCORE_NAMES = {"miou": "mIoU", "top1": "top-1 accuracy", "ods": "ODS"}
Points = list[tuple[float, float]]


def _read_series(path: Path, score: str) -> tuple[Points, Points]:
    """``(iteration, loss)`` and ``(epoch, val_<score>)`` points of a JSONL log, in file order."""
    if not path.is_file():
        raise DLAError(f"metrics log {path} not found")
    loss, scores = [], []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if "iteration" in record and "loss" in record:
                loss.append((float(record["iteration"]), float(record["loss"])))
            if "epoch" in record and f"val_{score}" in record:
                scores.append((float(record["epoch"]), float(record[f"val_{score}"])))
        except (ValueError, TypeError) as error:  # json.JSONDecodeError is a ValueError
            raise DLAError(f"{path}, line {number}: not a JSON record of numbers ({error})") from None
    return loss, scores


def _chart(axes: "Axes", points: Points, title: str, x_label: str, y_label: str) -> None:
    """One line chart with a marker per point and integer ticks on x; a note instead of a line without points."""
    axes.set_title(title, fontsize=10)
    axes.set_xlabel(x_label)
    axes.set_ylabel(y_label)
    axes.grid(alpha=0.3)
    if not points:
        axes.set(xticks=[], yticks=[])
        axes.text(0.5, 0.5, "nothing logged yet", transform=axes.transAxes, ha="center", va="center", color="grey")
        return
    axes.locator_params(axis="x", integer=True, min_n_ticks=1)  # one epoch: one tick, at its number
    xs, ys = zip(*points, strict=True)
    axes.plot(xs, ys, color="C0", linewidth=2, marker="o", markersize=4 if len(points) <= 50 else 0, clip_on=False)


def curves_figure(loss: Points, scores: Points, score: str = "miou") -> "Figure":
    """The training loss against the iteration (left) and the validation ``score`` against the epoch (right),
    its best value in the title."""
    figure = new_figure(9.6, 3.4)
    loss_axes, score_axes = figure.subplots(1, 2)
    _chart(loss_axes, loss, "training loss", "iteration", "loss")
    name = SCORE_NAMES.get(score, score)
    title = f"validation {name}"
    if scores:
        best_epoch, best = max(scores, key=lambda point: point[1])
        title += f" (best {best:.4f}, epoch {best_epoch:g})"
    _chart(score_axes, scores, title, "epoch", name)
    if scores:  # scores are fractions: the autoscaled span, never beyond [0, 1]
        low, high = score_axes.get_ylim()
        score_axes.set_ylim(max(low, 0.0), min(high, 1.0))
    return figure


def plot_curves(metrics_jsonl_path: str | Path, out_png: str | Path, score: str = "miou") -> Path:
    """Draw the training loss (left) and the validation ``score`` (right: ``miou``, ``top1``, ``ods``) of a JSONL
    log into ``out_png``; returns its path.

    A chart with no records says so instead of failing, so the plot can be drawn mid-training.
    """
    loss, scores = _read_series(Path(metrics_jsonl_path), score)
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure_image(curves_figure(loss, scores, score)).save(out, format="PNG")
    return out
