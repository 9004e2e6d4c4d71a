"""Boundary detection scores of the BSDS500 benchmark: ODS, OIS and AP, written from the benchmark's definition.

The protocol is that of BSDS500's ``boundaryBench`` (``evaluation_bdry_image`` and ``collect_eval_bdry``),
which the Structured Edge (SE) toolbox's ``edgesEval`` and the HED/RCF evaluations reproduce.

Thinning before thresholding (``thin_edges``). Networks give soft, several-pixel-wide boundaries, so they are
first thinned by non-maximum suppression along the boundary normal as SE's ``edgesNms`` does: the normal's
angle is ``O = atan(Oyy * sign(-Oxy) / (Oxx + 1e-5)) mod pi`` from second derivatives (``np.gradient``, like
MATLAB's ``gradient``) of the map smoothed by SE's triangle filter of radius 4 (``convTri``, symmetric
padding); a pixel survives when ``multiplier * value`` is at least the bilinearly interpolated values at
``1 .. radius`` pixels either way along ``(cos O, sin O)`` (sample points clamped into the image as SE
does), and then pixels within ``border`` of the image edge are scaled by ``distance / border`` (0 on the
outermost row and column; corners get both factors), SE's damping of noisy responses near the frame.
One deliberate deviation: ``sign(0)`` is taken as +1 (MATLAB's is 0), since with ``Oxy`` exactly 0, as on
an exactly horizontal ridge, ``sign(0) = 0`` sets ``O = 0``, along the ridge, which would leave the ridge
unthinned; where ``Oxy != 0``, which is everywhere on real maps, nothing changes. Arithmetic is float64
(SE: float32), so exact ties may rarely resolve differently.

Thresholds and thinning after thresholding. ``n`` thresholds ``linspace(1/(n+1), 1 - 1/(n+1), n)`` (99 by
default: 0.01 .. 0.99); the prediction at ``t`` is ``map >= t`` thinned to one-pixel-wide strokes by
``thin_binary``, the thinning of MATLAB's ``bwmorph(..., 'thin', Inf)`` (Lam, Lee & Suen 1992, the
two-subiteration parallel algorithm on p. 879 of their survey) as the benchmark applies to every map.

Matching (``match_edges``). BSDS's ``correspondPixels`` pairs predicted and ground-truth boundary pixels one
to one, only within ``max_distance = tolerance * image diagonal`` (Euclidean, pixels; ``tolerance`` 0.0075).
It solves a min-cost assignment (CSA) in which leaving a pixel unpaired costs 100 times the radius, so in
practice it maximises the number of pairs first and then minimises their total distance. Here a maximum
matching (a unit-capacity maximum flow by Dinic's algorithm) has the same number of pairs, so the same
per-annotator ``cntR``. Which pixels get paired is not unique, though, and ``cntP``, the union over
annotators of the paired predicted pixels, depends on it: ``image_counts`` matches from the highest
threshold down, growing each matching from the previous one (confident pixels keep their partners). On a
dense synthetic map that put ``cntP`` up to 3% below an exact min-cost matching's at the lowest thresholds
and within 1% from 0.5 up; matching each threshold from scratch was up to 5% above instead.

Counts (``image_counts``), per threshold: ``cntR`` sums the matched ground-truth pixels over annotators and
``sumR`` their boundary pixels (recall is over all annotations); ``cntP`` counts predicted pixels matched to at
least one annotator and ``sumP`` all predicted pixels. ``R = cntR / sumR`` and ``P = cntP / sumP``, taken as
0 when the denominator is 0 (BSDS: ``cnt ./ (sum + (sum == 0))``); ``F = 2PR / (P + R)``, 0 when
``P + R = 0``.

Scores (``boundary_scores``):

* ODS: the counts are summed over images, one (R, P) point per threshold; BSDS's ``maxF`` also scans 100
  evenly spaced points (``linspace(0, 1)``) on each segment between neighbouring thresholds, interpolating
  threshold, R and P linearly, and reports the first point with the highest F. ``ods_threshold``,
  ``ods_precision`` and ``ods_recall`` are that point's (so they may lie between thresholds).
* OIS: each image's threshold with its highest F (the highest such threshold on a tie, as ``ff(end)``);
  those images' counts are summed and scored (no interpolation).
* AP: the area under the dataset curve as BSDS computes it: the distinct recalls, ascending, each with the
  precision of its highest threshold (what MATLAB's ``unique`` returned when the benchmark was written;
  releases since R2013a return the first occurrence instead), precision linearly interpolated at recalls
  ``0, 0.01, .., 1`` inside the recall range (0 outside it), summed and multiplied by 0.01. So a curve
  spanning recalls [a, b] with precision 1 scores 0.01 x (the number of grid points in [a, b]), and a curve
  that is one point, as a binary map's is, scores 0.
"""

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from scipy import ndimage, sparse
from scipy.sparse.csgraph import maximum_flow

from ..distributed import all_gather_rows
from ..errors import DLAError

_SMOOTHING_RADIUS = 4  # SE's convTri radius before estimating orientation
_ORIENTATION_EPS = 1e-5
_SEGMENT_STEPS = 100  # points per segment in BSDS's interpolated search for the ODS
_RECALL_GRID = np.arange(101) / 100  # BSDS's 0:0.01:1

# 8-neighbourhood bit order of the thinning tables: x1..x8 = E, NE, N, NW, W, SW, S, SE (row offset, column offset)
_NEIGHBOURS = ((0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1), (1, 0), (1, 1))

ArrayOrFloat = np.ndarray | float


def _check_probability(probability: np.ndarray) -> np.ndarray:
    """``probability`` as a float64 ``H x W`` array, checked to be finite and in [0, 1]."""
    values = np.asarray(probability)
    if values.ndim != 2:
        raise DLAError(f"a boundary map is H x W, got shape {values.shape}")
    if values.dtype.kind not in "biuf":
        raise DLAError(f"a boundary map holds numbers, got dtype {values.dtype}")
    values = values.astype(np.float64)
    if values.size and not (np.isfinite(values).all() and values.min() >= 0 and values.max() <= 1):
        raise DLAError(
            f"boundary probabilities must be finite and in [0, 1], got range "
            f"[{values.min()}, {values.max()}]; divide 8-bit maps by 255"
        )
    return values


def _check_mask(mask: np.ndarray, what: str) -> np.ndarray:
    """``mask`` (bool, or numbers 0/1) as a boolean ``H x W`` array."""
    values = np.asarray(mask)
    if values.ndim != 2:
        raise DLAError(f"{what} is an H x W boundary mask, got shape {values.shape}")
    if values.dtype != bool:
        if values.dtype.kind not in "iuf" or not np.isin(values, (0, 1)).all():
            raise DLAError(f"{what} must be binary (bool or 0/1), got dtype {values.dtype}")
        values = values != 0
    return values


def _check_annotations(annotations: Sequence[np.ndarray], shape: tuple[int, ...]) -> list[np.ndarray]:
    if isinstance(annotations, np.ndarray) and annotations.ndim == 2:
        raise DLAError("annotations is a sequence of H x W masks, one per annotator; wrap a single mask in a list")
    masks = [_check_mask(mask, f"annotation {i}") for i, mask in enumerate(annotations)]
    if not masks:
        raise DLAError("an image needs at least one ground-truth annotation")
    for i, mask in enumerate(masks):
        if mask.shape != shape:
            raise DLAError(f"annotation {i} has shape {mask.shape}, the boundary map {shape}")
    return masks


def boundary_thresholds(count: int = 99) -> np.ndarray:
    """BSDS's ``count`` thresholds, ``linspace(1/(count+1), 1 - 1/(count+1), count)`` (0.5 when ``count`` is 1)."""
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise DLAError(f"thresholds is a positive number of thresholds, got {count!r}")
    return np.linspace(1 / (count + 1), 1 - 1 / (count + 1), int(count))


# ----------------------------------------------------------------------------------------------------------
# Non-maximum suppression


def _triangle_smooth(image: np.ndarray, radius: int) -> np.ndarray:
    """SE's ``convTri``: separable triangle filter ``[1 .. r+1 .. 1] / (r+1)^2`` with symmetric padding."""
    kernel = np.concatenate([np.arange(1, radius + 2), np.arange(radius, 0, -1)]) / (radius + 1) ** 2
    rows = ndimage.correlate1d(image, kernel, axis=0, mode="reflect")
    return ndimage.correlate1d(rows, kernel, axis=1, mode="reflect")


def _normal_angle(smoothed: np.ndarray) -> np.ndarray:
    """SE's boundary-normal angle in [0, pi) from second derivatives (x: columns, y: rows; sign(0) = +1)."""
    oy, ox = np.gradient(smoothed)
    oxx = np.gradient(ox, axis=1)
    oxy, oyy = np.gradient(oy, axis=1), np.gradient(oy, axis=0)
    sign = np.where(oxy > 0, -1.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.mod(np.arctan(oyy * sign / (oxx + _ORIENTATION_EPS)), np.pi)


def _bilinear(image: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """SE's ``interp``: bilinear samples at (rows, cols), clamped to ``[0, size - 1.001]``."""
    height, width = image.shape
    rows, cols = np.clip(rows, 0, height - 1.001), np.clip(cols, 0, width - 1.001)
    r0, c0 = rows.astype(np.intp), cols.astype(np.intp)
    dr, dc = rows - r0, cols - c0
    return (
        image[r0, c0] * (1 - dr) * (1 - dc)
        + image[r0, c0 + 1] * (1 - dr) * dc
        + image[r0 + 1, c0] * dr * (1 - dc)
        + image[r0 + 1, c0 + 1] * dr * dc
    )


def _border_weights(shape: tuple[int, int], border: int) -> np.ndarray:
    """SE's frame damping: ``min(distance to the edge, s) / s`` along each axis, multiplied."""
    height, width = shape
    frame = min(border, height // 2, width // 2)
    if frame == 0:
        return np.ones(shape)

    def ramp(size: int) -> np.ndarray:
        index = np.arange(size)
        return np.minimum(np.minimum(index, size - 1 - index), frame) / frame

    return np.outer(ramp(height), ramp(width))


def thin_edges(probability: np.ndarray, radius: int = 1, border: int = 5, multiplier: float = 1.01) -> np.ndarray:
    """Non-maximum suppression of a soft boundary map along its estimated normal (SE's ``edgesNms``).

    Args:
        probability: ``H x W`` boundary probabilities in [0, 1] (at least 2 x 2).
        radius: how many pixels either way along the normal a survivor must dominate.
        border: width of the frame whose values are damped linearly to 0 at the image edge (0: none).
        multiplier: a pixel survives when ``multiplier * value`` is at least each neighbour's value.
    Returns:
        ``H x W`` float32: surviving values (times the frame damping), 0 elsewhere. See the module docstring.
    """
    edges = _check_probability(probability)
    if min(edges.shape) < 2:
        raise DLAError(f"thin_edges needs a map of at least 2 x 2 pixels, got {edges.shape}")
    if radius < 0 or border < 0 or multiplier <= 0:
        raise DLAError(f"need radius >= 0, border >= 0 and multiplier > 0, got {radius}, {border}, {multiplier}")
    angle = _normal_angle(_triangle_smooth(edges, _SMOOTHING_RADIUS))
    rows, cols = np.nonzero(edges)
    boosted = multiplier * edges[rows, cols]
    along_rows, along_cols = np.sin(angle[rows, cols]), np.cos(angle[rows, cols])
    keep = np.ones(rows.size, dtype=bool)
    for step in range(1, radius + 1):
        for signed in (-step, step):
            keep &= ~(boosted < _bilinear(edges, rows + signed * along_rows, cols + signed * along_cols))
    thinned = np.zeros_like(edges)
    thinned[rows[keep], cols[keep]] = edges[rows[keep], cols[keep]]
    return (thinned * _border_weights(edges.shape, border)).astype(np.float32)


# ----------------------------------------------------------------------------------------------------------
# Morphological thinning


def _thinning_tables() -> tuple[np.ndarray, np.ndarray]:
    """Deletion look-up tables of the two subiterations, indexed by the 8-neighbourhood code (bit k: x_{k+1})."""
    codes = np.arange(256)
    x = [((codes >> k) & 1).astype(bool) for k in range(8)]
    crossings = sum((~x[2 * i] & (x[2 * i + 1] | x[(2 * i + 2) % 8])).astype(int) for i in range(4))
    n1 = sum((x[2 * i] | x[2 * i + 1]).astype(int) for i in range(4))
    n2 = sum((x[2 * i + 1] | x[(2 * i + 2) % 8]).astype(int) for i in range(4))
    fewest = np.minimum(n1, n2)
    deletable = (crossings == 1) & (fewest >= 2) & (fewest <= 3)
    first = deletable & ~((x[1] | x[2] | ~x[7]) & x[0])
    second = deletable & ~((x[5] | x[6] | ~x[3]) & x[4])
    return first, second


_THINNING_TABLES = _thinning_tables()


def _thin(mask: np.ndarray) -> np.ndarray:
    """``thin_binary`` on a checked boolean mask; works on the list of set pixels only."""
    padded = np.pad(mask, 1)
    flat = padded.reshape(-1)
    width = padded.shape[1]
    offsets = np.array([dr * width + dc for dr, dc in _NEIGHBOURS])
    weights = 1 << np.arange(8)
    pixels = np.flatnonzero(flat)
    changed = True
    while changed:
        changed = False
        for table in _THINNING_TABLES:
            delete = table[flat[pixels[:, None] + offsets] @ weights]
            if delete.any():
                flat[pixels[delete]] = False
                pixels = pixels[~delete]
                changed = True
    return padded[1:-1, 1:-1]


def thin_binary(mask: np.ndarray) -> np.ndarray:
    """Thin a binary ``H x W`` map to one-pixel-wide, connected strokes, as MATLAB's ``bwmorph(mask, 'thin', Inf)``.

    The parallel two-subiteration algorithm of Lam, Lee & Suen (1992, p. 879), repeated until nothing
    changes; isolated pixels and line end points stay. Returns a new boolean array.
    """
    return _thin(_check_mask(mask, "mask"))


# ----------------------------------------------------------------------------------------------------------
# Matching


def _pair_graph(rows: np.ndarray, cols: np.ndarray, truth: np.ndarray, max_distance: float) -> sparse.csr_array:
    """Bipartite graph (predicted pixel i, ground-truth pixel j) of pairs at most ``max_distance`` apart.

    ``rows``/``cols``: the predicted pixels; ground-truth pixels are numbered in ``np.nonzero(truth)`` order.
    """
    reach = max(int(math.floor(max_distance)), 0)
    index = np.full((truth.shape[0] + 2 * reach, truth.shape[1] + 2 * reach), -1, dtype=np.intp)
    index[reach : reach + truth.shape[0], reach : reach + truth.shape[1]][truth] = np.arange(np.count_nonzero(truth))
    dr, dc = np.mgrid[-reach : reach + 1, -reach : reach + 1]
    within = np.hypot(dr, dc) <= max_distance
    partners = index[rows[:, None] + reach + dr[within], cols[:, None] + reach + dc[within]]
    source, target = np.nonzero(partners >= 0)
    return sparse.csr_array(
        (np.ones(source.size, dtype=np.int8), (source, partners[source, target])), shape=(rows.size, np.count_nonzero(truth))
    )


class _Matching:
    """A maximum matching of a bipartite pixel graph restricted to a chosen set of rows, kept between calls.

    ``solve(rows)`` first releases the pairs of rows no longer chosen, then augments what is left to a
    maximum matching of the chosen rows: a unit-capacity maximum flow in the residual network (source ->
    free rows, unpaired edges row -> column, pairs reversed column -> row, free columns -> sink) by Dinic's
    algorithm, in effect Hopcroft-Karp. Any valid start reaches a maximum matching, so the counts are those of
    a fresh solve; starting from the previous threshold's matching, only the new rows need augmenting paths.
    (Not ``maximum_bipartite_matching``: its depth-first search never marks dead ends, which takes time
    exponential in the depth of ladder-like graphs, scipy issue #26147, and pixels along two parallel
    boundaries make exactly such graphs.)
    """

    def __init__(self, graph: sparse.csr_array) -> None:
        self.graph = graph
        self.row_mate = np.full(graph.shape[0], -1, dtype=np.intp)
        self.col_mate = np.full(graph.shape[1], -1, dtype=np.intp)

    def solve(self, rows: np.ndarray) -> None:
        """Make the pairs a maximum matching of the rows ``rows`` (distinct row indices) and all columns."""
        chosen = np.zeros(self.graph.shape[0], dtype=bool)
        chosen[rows] = True
        stale = (self.row_mate >= 0) & ~chosen
        self.col_mate[self.row_mate[stale]] = -1
        self.row_mate[stale] = -1
        sub = self.graph[rows]
        n, m = sub.shape
        free_rows, free_cols = np.flatnonzero(self.row_mate[rows] < 0), np.flatnonzero(self.col_mate < 0)
        if sub.nnz == 0 or free_rows.size == 0 or free_cols.size == 0:
            return
        # The residual network in CSR order: source, rows (unpaired edges), columns (one edge each), sink.
        local, cols = np.repeat(np.arange(n), np.diff(sub.indptr)), sub.indices
        forward = self.row_mate[rows][local] != cols
        position = np.zeros(self.graph.shape[0], dtype=np.intp)
        position[rows] = np.arange(n)
        sink = n + m + 1
        column_heads = np.where(self.col_mate >= 0, 1 + position[self.col_mate], sink)
        row_ends = free_rows.size + np.cumsum(np.bincount(local[forward], minlength=n))
        indptr = np.concatenate([[0, free_rows.size], row_ends, row_ends[-1] + np.arange(1, m + 1), [row_ends[-1] + m]])
        indices = np.concatenate([1 + free_rows, 1 + n + cols[forward], column_heads])
        network = sparse.csr_array((np.ones(indices.size, dtype=np.int32), indices, indptr), shape=(sink + 1, sink + 1))
        flow = maximum_flow(network, 0, sink, method="dinic").flow.tocoo()
        tail, head = flow.row[flow.data > 0], flow.col[flow.data > 0]
        row_node, col_node = (tail >= 1) & (tail <= n), (tail > n) & (tail < sink)
        lost = col_node & (head >= 1) & (head <= n)  # a pair given up along an augmenting path
        gained = row_node & (head > n) & (head < sink)
        self.row_mate[rows[head[lost] - 1]] = -1
        self.col_mate[tail[lost] - 1 - n] = -1
        self.row_mate[rows[tail[gained] - 1]] = head[gained] - 1 - n
        self.col_mate[head[gained] - 1 - n] = rows[tail[gained] - 1]


def match_edges(prediction: np.ndarray, truth: np.ndarray, max_distance: float) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one correspondence of predicted and ground-truth boundary pixels (BSDS's ``correspondPixels``).

    Args:
        prediction, truth: ``H x W`` binary masks (bool or 0/1) of the same shape.
        max_distance: the largest Euclidean distance, in pixels, of a matched pair.
    Returns:
        ``(matched_prediction, matched_truth)``, boolean ``H x W`` masks of the pixels in a maximum
        matching; the two hold equally many pixels. See the module docstring for how this relates to CSA.
    """
    predicted = _check_mask(prediction, "prediction")
    expected = _check_mask(truth, "truth")
    if predicted.shape != expected.shape:
        raise DLAError(f"prediction shape {predicted.shape} differs from truth shape {expected.shape}")
    if not max_distance >= 0:
        raise DLAError(f"max_distance must be non-negative, got {max_distance}")
    rows, cols = np.nonzero(predicted)
    matching = _Matching(_pair_graph(rows, cols, expected, max_distance))
    matching.solve(np.arange(rows.size))
    matched_prediction, matched_truth = np.zeros_like(predicted), np.zeros_like(expected)
    matched_prediction[rows, cols] = matching.row_mate >= 0
    matched_truth[expected] = matching.col_mate >= 0
    return matched_prediction, matched_truth


# ----------------------------------------------------------------------------------------------------------
# Per-image counts


def image_counts(
    probability: np.ndarray,
    annotations: Sequence[np.ndarray],
    thresholds: int = 99,
    tolerance: float = 0.0075,
    nms: bool = False,
    thin: bool = True,
) -> np.ndarray:
    """One image's BSDS counts at each threshold (``evaluation_bdry_image``).

    Args:
        probability: ``H x W`` boundary probabilities in [0, 1], normally already thinned by ``thin_edges``
            (the HED/RCF pipelines run that step separately, before the benchmark).
        annotations: one ``H x W`` binary boundary mask per annotator.
        thresholds: how many thresholds (``boundary_thresholds``).
        tolerance: the matching radius as a fraction of the image diagonal.
        nms: apply ``thin_edges`` (its defaults) to ``probability`` here first; leave False for a map the
            caller has thinned (thinning twice would damp the border frame twice) or a hand-made one.
        thin: thin every thresholded map with ``thin_binary``, as the benchmark does.
    Returns:
        int64 ``T x 4``: ``(cntR, sumR, cntP, sumP)`` per threshold, in increasing threshold order.
    """
    edges = _check_probability(probability)
    truths = _check_annotations(annotations, edges.shape)
    levels = boundary_thresholds(thresholds)
    if not tolerance >= 0:
        raise DLAError(f"tolerance must be non-negative, got {tolerance}")
    if nms:
        edges = thin_edges(edges)
    max_distance = tolerance * math.hypot(*edges.shape)
    # Every thresholded (and thinned) map lies inside the lowest threshold's: match within those pixels only,
    # from the highest threshold down, so that each matching grows from the previous one.
    rows, cols = np.nonzero(edges >= levels[0])
    number = np.full(edges.shape, -1, dtype=np.intp)
    number[rows, cols] = np.arange(rows.size)
    matchings = [_Matching(_pair_graph(rows, cols, truth, max_distance)) for truth in truths]
    reachable = [np.diff(matching.graph.indptr) > 0 for matching in matchings]
    truth_pixels = sum(int(np.count_nonzero(truth)) for truth in truths)

    counts = np.zeros((levels.size, 4), dtype=np.int64)
    previous = None
    for k in range(levels.size - 1, -1, -1):
        mask = edges >= levels[k]
        chosen = number[_thin(mask) if thin else mask]
        if previous is not None and np.array_equal(chosen, previous):
            counts[k] = counts[k + 1]
            continue
        previous = chosen
        matched_any = np.zeros(rows.size, dtype=bool)
        for matching, near in zip(matchings, reachable, strict=True):
            matching.solve(chosen[near[chosen]])
            counts[k, 0] += np.count_nonzero(matching.col_mate >= 0)
            matched_any |= matching.row_mate >= 0
        counts[k, 1:] = truth_pixels, np.count_nonzero(matched_any), chosen.size
    return counts


# ----------------------------------------------------------------------------------------------------------
# Scores


def f_measure(precision: ArrayOrFloat, recall: ArrayOrFloat) -> ArrayOrFloat:
    """``2PR / (P + R)``, 0 where ``P + R`` is 0; elementwise on arrays, a float for two numbers."""
    p, r = np.asarray(precision, dtype=np.float64), np.asarray(recall, dtype=np.float64)
    total = p + r
    f = 2 * p * r / np.where(total == 0, 1.0, total)
    return float(f) if f.ndim == 0 else f


def _rates(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(precision, recall)`` of ``(..., 4)`` counts ``(cntR, sumR, cntP, sumP)``; 0 over an empty total."""
    counts = counts.astype(np.float64)
    cnt_r, sum_r, cnt_p, sum_p = np.moveaxis(counts, -1, 0)
    return cnt_p / np.where(sum_p == 0, 1.0, sum_p), cnt_r / np.where(sum_r == 0, 1.0, sum_r)


def _best_interpolated(thresholds: np.ndarray, precision: np.ndarray, recall: np.ndarray) -> tuple[float, float, float, float]:
    """BSDS's ``maxF``: the best ``(threshold, precision, recall, F)`` on the piecewise-linear curve."""
    if thresholds.size == 1:
        return float(thresholds[0]), float(precision[0]), float(recall[0]), float(f_measure(precision[0], recall[0]))
    d = np.linspace(0, 1, _SEGMENT_STEPS)

    def along(values: np.ndarray) -> np.ndarray:
        return (values[1:, None] * d + values[:-1, None] * (1 - d)).ravel()

    t, p, r = along(thresholds), along(precision), along(recall)
    f = np.asarray(f_measure(p, r))
    best = int(np.argmax(f))
    return float(t[best]), float(p[best]), float(r[best]), float(f[best])


def _average_precision(precision: np.ndarray, recall: np.ndarray) -> float:
    """BSDS's area under the curve: precision interpolated on the recall grid 0:0.01:1, summed times 0.01."""
    distinct, last = np.unique(recall[::-1], return_index=True)  # first in reverse: the highest threshold
    if distinct.size < 2:
        return 0.0
    at = precision[::-1][last]
    grid = _RECALL_GRID[(_RECALL_GRID >= distinct[0]) & (_RECALL_GRID <= distinct[-1])]
    return float(np.interp(grid, distinct, at).sum() * 0.01)


def boundary_scores(counts: np.ndarray, thresholds: np.ndarray) -> dict[str, Any]:
    """ODS, OIS and AP of per-image counts, as plain Python numbers (see the module docstring).

    Args:
        counts: ``N x T x 4`` (``image_counts`` of N images); thresholds: the ``T`` thresholds.
    Returns:
        a dict with ``ods``, ``ods_threshold``, ``ods_precision``, ``ods_recall``, ``ois``, ``ois_precision``,
        ``ois_recall``, ``ap``, lists ``thresholds``, ``precision``, ``recall``, ``f`` (dataset-wide, per
        threshold) and ``images`` (N).
    """
    counts, thresholds = np.asarray(counts), np.asarray(thresholds, dtype=np.float64)
    if counts.ndim != 3 or counts.shape[2] != 4 or counts.shape[1] != thresholds.size or thresholds.ndim != 1:
        raise DLAError(f"expected counts N x T x 4 and T thresholds, got {counts.shape} and {thresholds.shape}")
    if counts.shape[0] == 0:
        raise DLAError("no images were counted; add some with update() first")
    precision, recall = _rates(counts.sum(axis=0))
    f = np.asarray(f_measure(precision, recall))  # one per threshold
    ods_threshold, ods_precision, ods_recall, ods = _best_interpolated(thresholds, precision, recall)
    per_image = np.asarray(f_measure(*_rates(counts)))  # N x T
    best = thresholds.size - 1 - np.argmax(per_image[:, ::-1], axis=1)  # the last best threshold of each image
    ois_precision, ois_recall = _rates(counts[np.arange(counts.shape[0]), best].sum(axis=0))
    return {
        "ods": ods,
        "ods_threshold": ods_threshold,
        "ods_precision": ods_precision,
        "ods_recall": ods_recall,
        "ois": f_measure(float(ois_precision), float(ois_recall)),
        "ois_precision": float(ois_precision),
        "ois_recall": float(ois_recall),
        "ap": _average_precision(precision, recall),
        "thresholds": thresholds.tolist(),
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "f": f.tolist(),
        "images": int(counts.shape[0]),
    }


class BoundaryBenchmark:
    """Accumulates per-image BSDS counts; ``compute`` gives ODS, OIS and AP over every image added.

    Args: as ``image_counts`` (``thresholds``, ``tolerance``, ``nms``, ``thin``); by default ``update`` takes
    maps already thinned by ``thin_edges``.
    """

    def __init__(self, thresholds: int = 99, tolerance: float = 0.0075, nms: bool = False, thin: bool = True) -> None:
        self.thresholds = boundary_thresholds(thresholds)
        if not tolerance >= 0:
            raise DLAError(f"tolerance must be non-negative, got {tolerance}")
        self.tolerance = tolerance
        self.nms = nms
        self.thin = thin
        self.reset()

    def reset(self) -> None:
        """Forget every image counted so far."""
        self._counts: list[np.ndarray] = []

    @property
    def counts(self) -> np.ndarray:
        """The ``N x T x 4`` counts ``(cntR, sumR, cntP, sumP)`` of the images so far (a copy)."""
        return np.array(self._counts, dtype=np.int64).reshape(-1, self.thresholds.size, 4)

    def update(self, probability: np.ndarray, annotations: Sequence[np.ndarray]) -> None:
        """Count one image: an ``H x W`` probability map and its annotators' binary boundary masks."""
        self._counts.append(image_counts(probability, annotations, self.thresholds.size, self.tolerance, self.nms, self.thin))

    def all_gather(self) -> None:
        """Replace the counts by those of every process's images (in rank order), when a process group is joined;
        the per-image counts are gathered rather than summed, as OIS picks each image's own best threshold."""
        gathered = all_gather_rows(torch.from_numpy(self.counts))
        self._counts = list(gathered.numpy())

    def compute(self) -> dict[str, Any]:
        """The scores of the images so far; see ``boundary_scores``."""
        return boundary_scores(self.counts, self.thresholds)
