"""Training curves drawn with PIL from a JSONL log."""

import json

import numpy as np
import pytest
from PIL import Image

from dla.errors import DLAError
from dla.tasks import plot_curves


def write_log(path, records):
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return path


def test_plot_curves_writes_a_png_with_both_charts(tmp_path):
    records = [{"iteration": i, "loss": 2.0 / (1 + i / 10), "lr": 0.01} for i in range(0, 100, 10)]
    records += [{"epoch": e, "val_miou": 0.1 * e} for e in (1, 2, 3)]
    out = plot_curves(write_log(tmp_path / "metrics.jsonl", records), tmp_path / "plots" / "curves.png")
    with Image.open(out) as image:
        assert image.format == "PNG"
        pixels = np.asarray(image.convert("RGB"))
    half = pixels.shape[1] // 2
    line_colour = (pixels == (31, 119, 180)).all(axis=2)
    assert line_colour[:, :half].sum() > 100 and line_colour[:, half:].sum() > 50  # a curve in each chart


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
        pixels = np.asarray(image.convert("RGB"))
    line_colour = (pixels == (31, 119, 180)).all(axis=2)
    rows = np.nonzero(line_colour[:, pixels.shape[1] // 2 :].any(axis=1))[0]
    assert rows.max() - rows.min() > 100  # a rising top-1 curve, not the flat mIoU one
