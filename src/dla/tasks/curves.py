"""Training curves drawn with PIL alone (no matplotlib): loss per iteration and a validation score per epoch.

Reads the training log, one JSON object per line; records with ``iteration`` and ``loss`` make the loss
curve, records with ``epoch`` and ``val_<score>`` (``val_miou``, ``val_top1``, ``val_ods``) the score's
curve; other records and keys are ignored.
"""

import json
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw

from ..errors import DLAError

PANEL = (480, 320)  # width, height of one chart
MARGIN = (60, 30, 20, 40)  # left, top, right, bottom space around the plotting area
LINE_COLOUR = (31, 119, 180)
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


def _span(values: Sequence[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    return (low - 0.5, high + 0.5) if low == high else (low, high)


def _draw_chart(draw: ImageDraw.ImageDraw, origin: tuple[int, int], points: Points, title: str, x_label: str) -> None:
    """One line chart in the ``PANEL`` whose top-left corner is ``origin``: title, axes, 5 ticks per axis."""
    left, top = origin[0] + MARGIN[0], origin[1] + MARGIN[1]
    right, bottom = origin[0] + PANEL[0] - MARGIN[2], origin[1] + PANEL[1] - MARGIN[3]
    draw.text((left, origin[1] + 8), title, fill="black")
    draw.line([(left, top), (left, bottom), (right, bottom)], fill="black")
    if not points:
        draw.text((left + 10, top + 10), "no data", fill="gray")
        return
    (x0, x1), (y0, y1) = _span([p[0] for p in points]), _span([p[1] for p in points])

    def to_pixel(x: float, y: float) -> tuple[float, float]:
        return left + (x - x0) / (x1 - x0) * (right - left), bottom - (y - y0) / (y1 - y0) * (bottom - top)

    for i in range(5):
        fraction = i / 4
        tx, ty = left + fraction * (right - left), bottom - fraction * (bottom - top)
        draw.line([(tx, bottom), (tx, bottom + 4)], fill="black")
        draw.text((tx - 12, bottom + 6), f"{x0 + fraction * (x1 - x0):.4g}", fill="black")
        draw.line([(left - 4, ty), (left, ty)], fill="black")
        draw.text((origin[0] + 4, ty - 6), f"{y0 + fraction * (y1 - y0):.3g}", fill="black")
    draw.text(((left + right) // 2 - 20, bottom + 22), x_label, fill="black")
    pixels = [to_pixel(x, y) for x, y in points]
    draw.line(pixels, fill=LINE_COLOUR, width=2)
    for x, y in pixels:  # markers, so that a single point shows too
        draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=LINE_COLOUR)


def plot_curves(metrics_jsonl_path: str | Path, out_png: str | Path, score: str = "miou") -> Path:
    """Draw the training loss (left) and the validation ``score`` (right: ``miou``, ``top1``) of a JSONL log
    into ``out_png``; returns its path.

    A chart with no records says "no data" instead of failing, so the plot can be drawn mid-training.
    """
    loss, scores = _read_series(Path(metrics_jsonl_path), score)
    canvas = Image.new("RGB", (2 * PANEL[0], PANEL[1]), "white")
    draw = ImageDraw.Draw(canvas)
    _draw_chart(draw, (0, 0), loss, "training loss", "iteration")
    _draw_chart(draw, (PANEL[0], 0), scores, f"validation {SCORE_NAMES.get(score, score)}", "epoch")
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out, format="PNG")
    return out
