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

Matching (``match_edges``), as BSDS's ``correspondPixels``: predicted and ground-truth boundary pixels are
paired one to one, only within ``max_distance = tolerance * image diagonal`` (Euclidean, pixels;
``tolerance`` 0.0075), by the minimum-cost assignment that its CSA program solves on this graph: a pair costs
its distance in hundredths of a pixel, ``rint(100 d)``; any pixel may instead go to an outlier node at
``outlier = ceil(100 * 100 * max_distance)`` (100 radii), and the outlier nodes of the two sides pair with
each other at that cost too. A matching of k pairs among n1 + n2 pixels then costs ``sum(pair costs) +
(n1 + n2 - k) * outlier``: each pair is worth ``outlier - cost``. So the matching is a maximum one unless
growing it (an augmenting path) would lengthen the pairs by more than 100 radii in all (e.g. a straight run
of boundary over 100 radii long matched to a copy shifted one pixel along itself: leaving one pixel of each
unpaired beats shifting every pair), and among those it has the least total distance. Which predicted pixels
it pairs decides ``cntP``, the union over annotators, so any maximum matching is not enough. Here the same
assignment is solved exactly, one connected component of the pair graph at a time (``_MinCostMatching``),
with scipy's assignment solvers. Among matchings of equal cost, which are common on a pixel grid, CSA's
choice is random, and independent between annotators; here each annotator gets its own pseudo-random order
of the pixels (``seed``), which the solvers follow, so that ties do not fall alike for every annotator (a
single fixed order, raster order, made ``cntP`` some 0.06% of ``sumP`` lower than CSA's on average). CSA
also connects each pixel to only 6 outlier nodes drawn at random (seeded from the clock), so it now and then
settles for a pair or two fewer than the optimum. ``docs/boundaries.md`` compares the two programs' counts.

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
* OIS: each image's threshold with its highest F (the lowest such threshold on a tie, as BSDS's ``ff(1)``
  of ``ff = find(F == max(F))``); those images' counts are summed and scored (no interpolation).
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
import scipy  # its submodules load on first use, not at every ``dla`` start
import torch

from ..distributed import all_gather_rows
from ..errors import DLAError

_SMOOTHING_RADIUS = 4  # SE's convTri radius before estimating orientation
_ORIENTATION_EPS = 1e-5
_SEGMENT_STEPS = 100  # points per segment in BSDS's interpolated search for the ODS
_RECALL_GRID = np.arange(101) / 100  # BSDS's 0:0.01:1
_COST_SCALE = 100  # correspondPixels' integer weights: hundredths of a pixel
_OUTLIER_COST = 100  # correspondPixels' cost of an unpaired pixel, in radii
_DENSE_LIMIT = 40_000  # components up to this many (row, column) entries go to the dense assignment solver

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
    rows = scipy.ndimage.correlate1d(image, kernel, axis=0, mode="reflect")
    return scipy.ndimage.correlate1d(rows, kernel, axis=1, mode="reflect")


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
    # A C-ordered copy with a frame of zeros, so that ``reshape(-1)`` is a view and deletions land in it
    # (``np.pad`` keeps a Fortran-ordered input's order, and reshaping that copies).
    padded = np.zeros((mask.shape[0] + 2, mask.shape[1] + 2), dtype=bool)
    padded[1:-1, 1:-1] = mask
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


def _outlier_cost(max_distance: float) -> int:
    """CSA's integer cost of leaving a pixel unpaired: ``_OUTLIER_COST`` radii in hundredths of a pixel (at least 1)."""
    return max(math.ceil(_OUTLIER_COST * _COST_SCALE * max_distance), 1)


def _tie_order(rows: np.ndarray, cols: np.ndarray, width: int, salt: int) -> np.ndarray:
    """Pseudo-random uint64 keys of the pixels ``(rows, cols)`` of an image ``width`` wide, drawn from their
    positions and ``salt`` (SplitMix64's finaliser): the order in which equally cheap pairs are preferred."""
    offset = np.uint64(salt * 0x9E3779B97F4A7C15 % 2**64)  # the golden-ratio increment of SplitMix64
    values = rows.astype(np.uint64) * np.uint64(width) + cols.astype(np.uint64) + offset
    values = (values ^ (values >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    values = (values ^ (values >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return values ^ (values >> np.uint64(31))


def _pair_costs(rows: np.ndarray, cols: np.ndarray, truth: np.ndarray, max_distance: float) -> "scipy.sparse.csr_array":
    """CSA's integer costs ``rint(100 * distance)`` of the pairs (predicted pixel i, ground-truth pixel j) at most
    ``max_distance`` apart; ``rows``/``cols``: the predicted pixels, ground-truth pixels numbered in
    ``np.nonzero(truth)`` order."""
    height, width = truth.shape
    reach = max(int(math.floor(max_distance)), 0)
    truth_rows, truth_cols = np.nonzero(truth)
    index = np.full((height + 2 * reach, width + 2 * reach), -1, dtype=np.intp)
    index[truth_rows + reach, truth_cols + reach] = np.arange(truth_rows.size)
    dr, dc = np.mgrid[-reach : reach + 1, -reach : reach + 1]
    within = dr**2 + dc**2 <= max_distance**2
    weights = np.rint(_COST_SCALE * np.hypot(dr, dc)[within]).astype(np.int64)
    partners = index[rows[:, None] + reach + dr[within], cols[:, None] + reach + dc[within]]
    source, offset = np.nonzero(partners >= 0)
    return scipy.sparse.csr_array((weights[offset], (source, partners[source, offset])), shape=(rows.size, truth_rows.size))


def _cheapest_assignment(
    rows: np.ndarray, cols: np.ndarray, costs: np.ndarray, shape: tuple[int, int], outlier: int
) -> np.ndarray:
    """The partner (column, or -1) of each row in a matching of least ``sum(costs of its pairs - outlier)``.

    ``rows``, ``cols``, ``costs``: the edges of one connected bipartite graph of ``shape``. Small graphs go to
    scipy's dense ``linear_sum_assignment``, where a pair absent from the graph counts 0, as much as leaving
    both pixels unpaired. Larger ones go to the sparse ``min_weight_full_bipartite_matching`` (LAPJVsp) as a square
    problem, whose initialisation (column reduction, augmenting row reduction) pairs most pixels before the
    shortest-path phase, which costs time in proportion to the columns for every row left: the smaller side S
    and a copy of the larger side L as rows, L and a copy of S as columns; a pair costs ``cost + 1``, S's pixel
    its copy ``outlier + 1`` (unpaired), L's copy its pixel 1 (unpaired), and L's copy of j S's copy of i 1
    wherever (i, j) is an edge, so that the copies of paired pixels pair up. A perfect matching with k pairs
    then costs ``sum(pair costs) - k * outlier`` plus a constant. (Every weight is shifted by 1 as LAPJVsp
    refuses zero weights; with the rows as the larger side, or as a rectangular problem, it is slower.)
    """
    partner = np.full(shape[0], -1, dtype=np.intp)
    if shape[0] * shape[1] <= _DENSE_LIMIT:
        gains = np.zeros(shape)
        gains[rows, cols] = np.minimum(costs - outlier, 0)  # a pair dearer than two outliers is never made
        pick_rows, pick_cols = scipy.optimize.linear_sum_assignment(gains)
        paired = gains[pick_rows, pick_cols] < 0
        partner[pick_rows[paired]] = pick_cols[paired]
        return partner
    flip = shape[1] < shape[0]
    small, large = (cols, rows) if flip else (rows, cols)
    s, n = min(shape), sum(shape)
    own_small, own_large = np.arange(s), np.arange(n - s)
    square = scipy.sparse.csr_array(
        (
            np.concatenate([costs + 1.0, np.full(s, outlier + 1.0), np.ones(n - s), np.ones(costs.size)]),
            (
                np.concatenate([small, own_small, s + own_large, s + large]),
                np.concatenate([large, n - s + own_small, own_large, n - s + small]),
            ),
        ),
        shape=(n, n),
    )
    pick_rows, pick_cols = scipy.sparse.csgraph.min_weight_full_bipartite_matching(square)
    paired = (pick_rows < s) & (pick_cols < n - s)
    if flip:
        partner[pick_cols[paired]] = pick_rows[paired]
    else:
        partner[pick_rows[paired]] = pick_cols[paired]
    return partner


def _group_bounds(labels: np.ndarray, count: int, keys: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Items ordered by label, then key (or index); each label's start in that order; each item's rank within it."""
    order = np.argsort(labels, kind="stable") if keys is None else np.lexsort((keys, labels))
    starts = np.concatenate([[0], np.cumsum(np.bincount(labels, minlength=count))])
    rank = np.empty(labels.size, dtype=np.intp)
    rank[order] = np.arange(labels.size) - starts[labels[order]]
    return order, starts, rank


class _MinCostMatching:
    """Minimum-cost matchings of a pair graph (``_pair_costs``) restricted to chosen rows, solved one connected
    component at a time and remembered by the component's rows, so that between neighbouring thresholds only the
    components that changed are solved again (a component's matching depends on its pixels only).

    Components with a single predicted or a single ground-truth pixel hold one pair, their cheapest edge.
    Ties between equally cheap matchings go by the pixels' keys (``row_keys``, ``col_keys``, from
    ``_tie_order``): a component's pixels are handed to the solvers in key order.
    """

    def __init__(self, costs: "scipy.sparse.csr_array", outlier: int, row_keys: np.ndarray, col_keys: np.ndarray) -> None:
        self.costs = costs
        self.outlier = outlier
        self.row_keys, self.col_keys = row_keys, col_keys
        self._solved: dict[bytes, np.ndarray] = {}

    def solve(self, rows: np.ndarray) -> np.ndarray:
        """The ground-truth partner of each of ``rows`` (increasing row indices) in the matching, -1 for none."""
        partner = np.full(rows.size, -1, dtype=np.intp)
        reachable = np.diff(self.costs.indptr)[rows] > 0
        sub = self.costs[rows[reachable]]
        n, m = sub.shape
        if n == 0:
            return partner
        edge_rows = np.repeat(np.arange(n), np.diff(sub.indptr))
        # Weak components of the directed graph row -> n + column: the bipartite graph's components.
        links = scipy.sparse.csr_array(
            (np.ones(sub.nnz, dtype=np.int8), sub.indices + n, np.concatenate([sub.indptr, np.full(m, sub.nnz)])),
            shape=(n + m, n + m),
        )
        count, labels = scipy.sparse.csgraph.connected_components(links, directed=True, connection="weak")
        row_labels, col_labels = labels[:n], labels[n:]
        edge_labels = row_labels[edge_rows]
        rows_in = np.bincount(row_labels, minlength=count)
        cols_in = np.bincount(col_labels, minlength=count)
        found = np.full(n, -1, dtype=np.intp)

        chosen = rows[reachable]
        row_keys, col_keys = self.row_keys[chosen], self.col_keys
        single = (rows_in == 1) | (cols_in == 1)
        edges = np.flatnonzero(single[edge_labels])
        edge_keys = row_keys[edge_rows[edges]] ^ col_keys[sub.indices[edges]]
        edges = edges[np.lexsort((edge_keys, sub.data[edges], edge_labels[edges]))]
        first = np.ones(edges.size, dtype=bool)
        first[1:] = edge_labels[edges][1:] != edge_labels[edges][:-1]
        found[edge_rows[edges[first]]] = sub.indices[edges[first]]

        several = np.flatnonzero((rows_in > 1) & (cols_in > 1))
        if several.size:
            row_order, row_starts, row_rank = _group_bounds(row_labels, count, row_keys)
            col_order, col_starts, col_rank = _group_bounds(col_labels, count, col_keys)
            edge_order, edge_starts, _ = _group_bounds(edge_labels, count)
            for label in several:
                members = row_order[row_starts[label] : row_starts[label + 1]]
                key = chosen[members].tobytes()
                if key not in self._solved:
                    edges = edge_order[edge_starts[label] : edge_starts[label + 1]]
                    columns = col_order[col_starts[label] : col_starts[label + 1]]
                    shape = (members.size, columns.size)
                    local = _cheapest_assignment(
                        row_rank[edge_rows[edges]], col_rank[sub.indices[edges]], sub.data[edges], shape, self.outlier
                    )
                    self._solved[key] = np.where(local >= 0, columns[local], -1)
                found[members] = self._solved[key]
        partner[reachable] = found
        return partner


def _matching(rows: np.ndarray, cols: np.ndarray, truth: np.ndarray, max_distance: float, seed: int) -> _MinCostMatching:
    """The matchings of the predicted pixels ``(rows, cols)`` with ``truth``, ties broken by ``seed``."""
    width = truth.shape[1]
    truth_rows, truth_cols = np.nonzero(truth)
    row_keys, col_keys = _tie_order(rows, cols, width, 2 * seed), _tie_order(truth_rows, truth_cols, width, 2 * seed + 1)
    return _MinCostMatching(_pair_costs(rows, cols, truth, max_distance), _outlier_cost(max_distance), row_keys, col_keys)


def match_edges(prediction: np.ndarray, truth: np.ndarray, max_distance: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one correspondence of predicted and ground-truth boundary pixels (BSDS's ``correspondPixels``).

    Args:
        prediction, truth: ``H x W`` binary masks (bool or 0/1) of the same shape.
        max_distance: the largest Euclidean distance, in pixels, of a matched pair.
        seed: draws the pseudo-random order in which equally cheap matchings are preferred; ``image_counts``
            gives annotator k the seed k, so that annotators break ties independently, as CSA's do.
    Returns:
        ``(matched_prediction, matched_truth)``, boolean ``H x W`` masks of the pixels in the minimum-cost
        matching (see the module docstring); the two hold equally many pixels.
    """
    predicted = _check_mask(prediction, "prediction")
    expected = _check_mask(truth, "truth")
    if predicted.shape != expected.shape:
        raise DLAError(f"prediction shape {predicted.shape} differs from truth shape {expected.shape}")
    if not max_distance >= 0:
        raise DLAError(f"max_distance must be non-negative, got {max_distance}")
    rows, cols = np.nonzero(predicted)
    matching = _matching(rows, cols, expected, max_distance, seed)
    partner = matching.solve(np.arange(rows.size))
    matched_prediction, matched_truth = np.zeros_like(predicted), np.zeros_like(expected)
    matched_prediction[rows, cols] = partner >= 0
    truth_rows, truth_cols = np.nonzero(expected)
    matched_truth[truth_rows[partner[partner >= 0]], truth_cols[partner[partner >= 0]]] = True
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
    # Every thresholded (and thinned) map lies inside the lowest threshold's: pair graphs over those pixels only.
    rows, cols = np.nonzero(edges >= levels[0])
    number = np.full(edges.shape, -1, dtype=np.intp)
    number[rows, cols] = np.arange(rows.size)
    matchings = [_matching(rows, cols, truth, max_distance, seed) for seed, truth in enumerate(truths)]
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
        for matching in matchings:
            paired = matching.solve(chosen) >= 0
            counts[k, 0] += np.count_nonzero(paired)
            matched_any[chosen[paired]] = True
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
    best = np.argmax(per_image, axis=1)  # each image's first best threshold, the lowest (BSDS's ff(1))
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
