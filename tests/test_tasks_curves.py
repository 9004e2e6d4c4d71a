"""Training curves drawn with matplotlib from a JSONL log: both charts, axes for one point and for none."""

import json

import numpy as np
import pytest
from PIL import Image

from dla.errors import DLAError
from dla.tasks import plot_curves
from dla.tasks.curves import curves_figure
from dla.tasks.visualize import figure_image

LINE = (31, 119, 180)  # matplotlib's first colour, C0


def write_log(path, records):
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return path


def line_pixels(image):
    return (np.asarray(image.convert("RGB")) == LINE).all(axis=2)


def test_plot_curves_writes_a_png_with_both_charts(tmp_path):
    records = [{"iteration": i, "loss": 2.0 / (1 + i / 10), "lr": 0.01} for i in range(0, 100, 10)]
    records += [{"epoch": e, "val_miou": 0.1 * e} for e in (1, 2, 3)]
    out = plot_curves(write_log(tmp_path / "metrics.jsonl", records), tmp_path / "plots" / "curves.png")
    with Image.open(out) as image:
        assert image.format == "PNG"
        line = line_pixels(image)
    half = line.shape[1] // 2
    assert line[:, :half].sum() > 100 and line[:, half:].sum() > 100  # a curve in each chart


def test_one_evaluation_gets_an_axis_around_its_value():
    """A single score: the axis spans a little around it, within [0, 1], one tick at its epoch (the hand-drawn
    axis ran from -0.43 to 0.57)."""
    figure = curves_figure([(1.0, 1.2)], [(1.0, 0.57)])
    image = figure_image(figure)
    loss_axes, score_axes = figure.axes
    low, high = score_axes.get_ylim()
    assert 0.5 < low < 0.57 < high < 0.64
    left, right = score_axes.get_xlim()
    assert [tick for tick in score_axes.get_xticks() if left <= tick <= right] == [1.0]
    assert "best 0.5700, epoch 1" in score_axes.get_title()
    low, high = loss_axes.get_ylim()
    assert low < 1.2 < high and high - low < 0.5
    x, y = score_axes.transData.transform((1.0, 0.57))
    marker = np.asarray(image)[image.height - int(round(y)) - 2 : image.height - int(round(y)) + 3, int(x) - 2 : int(x) + 3]
    assert (marker == LINE).all(axis=2).sum() > 10  # the point is drawn where the axes put it


@pytest.mark.parametrize("value", [0.0, 1.0])
def test_score_axis_stays_within_zero_and_one(value):
    figure = curves_figure([(1.0, 0.5), (2.0, 0.4)], [(1.0, value), (2.0, value)])
    figure_image(figure)
    low, high = figure.axes[1].get_ylim()
    assert 0.0 <= low <= value <= high <= 1.0 and high > low


def test_no_logged_loss_says_so_and_the_scores_still_draw(tmp_path):
    """A run shorter than the log interval once logged no loss: the loss chart says so, without made-up ticks."""
    figure = curves_figure([], [(1.0, 0.3), (2.0, 0.4)])
    image = figure_image(figure)
    loss_axes, score_axes = figure.axes
    assert [text.get_text() for text in loss_axes.texts] == ["nothing logged yet"] and not loss_axes.lines
    assert len(loss_axes.get_xticks()) == 0 and len(loss_axes.get_yticks()) == 0
    assert len(score_axes.lines) == 1
    line = line_pixels(image)
    assert line[:, : line.shape[1] // 2].sum() == 0 and line[:, line.shape[1] // 2 :].sum() > 50


def test_plot_curves_with_one_series_missing_still_draws(tmp_path):
    out = plot_curves(write_log(tmp_path / "m.jsonl", [{"iteration": 1, "loss": 0.5}]), tmp_path / "c.png")
    with Image.open(out) as image:
        assert image.format == "PNG"


def test_plot_curves_reports_bad_lines_and_missing_files(tmp_path):
    log = tmp_path / "m.jsonl"
    log.write_text('{"iteration": 1, "loss": 0.5}\nnot json\n')
    with pytest.raises(DLAError, match="line 2"):
        plot_curves(log, tmp_path / "c.png")
    with pytest.raises(DLAError, match="not found"):
        plot_curves(tmp_path / "absent.jsonl", tmp_path / "c.png")


def test_plot_curves_of_another_score(tmp_path):
    records = [{"epoch": e, "val_top1": 0.2 * e, "val_miou": 0.0} for e in (1, 2, 3)]
    out = plot_curves(write_log(tmp_path / "m.jsonl", records), tmp_path / "c.png", score="top1")
    with Image.open(out) as image:
        line = line_pixels(image)
    rows = np.nonzero(line[:, line.shape[1] // 2 :].any(axis=1))[0]
    assert rows.max() - rows.min() > 100  # a rising top-1 curve, not the flat mIoU one
