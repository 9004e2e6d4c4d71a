"""Confusion matrices drawn with matplotlib: sizes, shading by row fraction, empty rows, labels, many classes."""

import numpy as np
import pytest
import torch

from dla.errors import DLAError
from dla.tasks.visualize import compact_count, confusion_figure, draw_confusion_matrix, figure_image

DARK, LIGHT, WHITE = (8, 48, 107), (247, 251, 255), (255, 255, 255)  # "Blues" at 1 and 0, and the blank


def rendered(matrix, classes, **kwargs):
    """The drawn figure as an array, and the pixel ``(row, column)`` of a point in cell ``(t, p)``: its centre,
    or ``offset`` cells away from it along both axes (away from the value written on small matrices)."""
    figure = confusion_figure(matrix, classes, **kwargs)
    pixels = np.asarray(figure_image(figure)).astype(int)
    axes = figure.axes[0]

    def at(t, p, offset=0.0):
        x, y = axes.transData.transform((p + offset, t + offset))
        return pixels.shape[0] - 1 - int(y), int(x)

    return pixels, axes, at


def near(colour, expected, tolerance=3):
    return np.abs(np.asarray(colour) - expected).max() <= tolerance


@pytest.mark.parametrize("num", [2, 200])
def test_diagonal_is_dark_and_the_rest_light(num):
    pixels, _, at = rendered(np.eye(num, dtype=np.int64) * 7, [f"c{i}" for i in range(num)])
    offset = 0.3 if num <= 20 else 0.0  # small matrices write the value in the middle of the cell
    for t in range(0, num, 1 if num <= 20 else 17):
        assert near(pixels[at(t, t, offset)], DARK)
        assert near(pixels[at(t, (t + 1) % num, offset)], LIGHT)


def test_small_matrix_is_small_and_large_one_fits():
    small = draw_confusion_matrix(np.ones((2, 2)), ["cat", "dog"])
    large = draw_confusion_matrix(torch.ones(200, 200, dtype=torch.int64), [str(i) for i in range(200)])
    assert small.mode == large.mode == "RGB"
    assert max(small.size) < 800
    assert 1000 < large.size[0] <= 2000 and 1000 < large.size[1] <= 2000


def test_shade_follows_the_row_fraction_and_empty_rows_stay_blank():
    matrix = np.array([[1, 3, 0], [0, 0, 0], [2, 0, 2]])
    pixels, axes, at = rendered(matrix, ["a", "b", "c"], normalize=False)
    assert all(near(pixels[at(1, p, 0.3)], WHITE, 0) for p in range(3))  # no samples: blank, not "0 %"
    assert near(pixels[at(0, 2, 0.3)], LIGHT)  # a zero of a row with samples is the palest blue
    shade = lambda t, p: pixels[at(t, p, 0.3)].sum()  # noqa: E731
    assert shade(0, 1) < shade(2, 0) == shade(2, 2) < shade(0, 0) < shade(0, 2)  # 0.75 < 0.5 < 0.25 < 0
    written = {(round(text.get_position()[1]), round(text.get_position()[0])): text for text in axes.texts}
    assert sorted(written) == [(0, 0), (0, 1), (0, 2), (2, 0), (2, 1), (2, 2)]  # no values on the empty row
    assert written[0, 1].get_text() == "3" and written[0, 1].get_color() == "white"  # light on a dark cell
    assert written[0, 0].get_text() == "1" and written[0, 0].get_color() == "black"


def test_names_label_up_to_forty_classes_and_indices_beyond():
    _, axes, _ = rendered(np.eye(3), ["road", "a" * 30, "sky"])
    assert [label.get_text() for label in axes.get_yticklabels()] == ["road", "a" * 24, "sky"]
    assert [label.get_text() for label in axes.get_xticklabels()] == ["road", "a" * 24, "sky"]
    assert [text.get_text() for text in axes.texts][:2] == ["1.00", "0.00"]  # row fractions
    _, axes, _ = rendered(np.eye(41), [f"class {i}" for i in range(41)])
    ticks = [tick for tick in axes.get_xticks() if 0 <= tick <= 40]
    assert 2 <= len(ticks) < 20 and all(float(tick).is_integer() for tick in ticks) and not axes.texts


def test_counts_are_written_compactly():
    assert [compact_count(c) for c in (0, 950, 1234, 12_345, 3_400_000, 1.2e9)] == ["0", "950", "1.23k", "12k", "3.4M", "1.2G"]


def test_wrong_shape_is_refused():
    with pytest.raises(DLAError):
        draw_confusion_matrix(np.ones((3, 2)), ["a", "b", "c"])
    with pytest.raises(DLAError):
        draw_confusion_matrix(np.ones((2, 2)), ["a", "b", "c"])
