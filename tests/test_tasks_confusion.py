"""Confusion matrices drawn with PIL: sizes, shading by row fraction, empty rows."""

import numpy as np
import pytest
import torch

from dla.errors import DLAError
from dla.tasks.visualize import CONFUSION_DARK, draw_confusion_matrix


def cell_centres(image, num):
    """Pixel centres of the cells, found from the matrix's black frame (the grid is its inside)."""
    black = (np.asarray(image) == 0).all(axis=2)
    rows, cols = black.sum(axis=1), black.sum(axis=0)  # the frame's lines are the longest black lines
    top, bottom = np.flatnonzero(rows == rows.max())[[0, -1]]
    left, right = np.flatnonzero(cols == cols.max())[[0, -1]]
    assert rows.max() == cols.max() == right - left + 1 == bottom - top + 1
    cell = (right - left - 1) / num
    centre = lambda i, start: int(start + 1 + (i + 0.5) * cell)  # noqa: E731
    return [[(centre(t, top), centre(p, left)) for p in range(num)] for t in range(num)]


@pytest.mark.parametrize("num", [2, 200])
def test_diagonal_is_dark_and_the_rest_white(num):
    image = draw_confusion_matrix(np.eye(num, dtype=np.int64) * 7, [f"c{i}" for i in range(num)])
    assert image.mode == "RGB"
    assert max(image.size) <= 2000
    array = np.asarray(image)
    centres = cell_centres(image, num)
    samples = range(num) if num <= 20 else range(0, num, 17)
    for t in samples:
        for p in (t, (t + 1) % num):
            y, x = centres[t][p]
            colour = tuple(int(v) for v in array[y, x])
            if t == p:
                assert colour == CONFUSION_DARK or num <= 20  # small matrices write the value on the cell
                assert np.abs(array[y - 3 : y + 4, x - 3 : x + 4] - CONFUSION_DARK).sum(axis=2).min() == 0
            else:
                assert colour == (255, 255, 255)


def test_small_matrix_is_small_and_large_one_fits():
    small = draw_confusion_matrix(np.ones((2, 2)), ["cat", "dog"])
    large = draw_confusion_matrix(torch.ones(200, 200, dtype=torch.int64), [str(i) for i in range(200)])
    assert max(small.size) < 400
    assert 1000 < large.size[0] <= 2000 and 1000 < large.size[1] <= 2000


def test_shade_follows_the_row_fraction_and_empty_rows_stay_blank():
    matrix = np.array([[1, 3, 0], [0, 0, 0], [2, 0, 2]])
    image = draw_confusion_matrix(matrix, ["a", "b", "c"], normalize=False)
    array = np.asarray(image).astype(int)
    centres = cell_centres(image, 3)
    empty_row = np.stack([array[y - 3 : y + 4, x - 3 : x + 4] for y, x in centres[1]])
    assert (empty_row == 255).all()
    # the 0.75 cell is darker than the 0.5 cells, which are darker than the 0.25 one
    corner = lambda t, p: array[centres[t][p][0] - 8, centres[t][p][1] - 8].sum()  # noqa: E731
    assert corner(0, 1) < corner(2, 0) == corner(2, 2) < corner(0, 0) < corner(0, 2) == 3 * 255
    y, x = centres[0][1]
    assert array[y - 6 : y + 7, x - 8 : x + 9].sum(axis=2).max() > 600  # its count is written in light text


def test_wrong_shape_is_refused():
    with pytest.raises(DLAError):
        draw_confusion_matrix(np.ones((3, 2)), ["a", "b", "c"])
    with pytest.raises(DLAError):
        draw_confusion_matrix(np.ones((2, 2)), ["a", "b", "c"])
