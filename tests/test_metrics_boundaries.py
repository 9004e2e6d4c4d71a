"""BSDS boundary benchmark against hand-made maps whose matches and counts can be worked out by hand."""

import math

import numpy as np
import pytest
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

from dla.errors import DLAError
from dla.metrics import (
    BoundaryBenchmark,
    boundaries,
    boundary_scores,
    boundary_thresholds,
    f_measure,
    image_counts,
    match_edges,
    thin_binary,
    thin_edges,
)


def _mask(shape, pixels):
    mask = np.zeros(shape, dtype=bool)
    for row, col in pixels:
        mask[row, col] = True
    return mask


# ----------------------------------------------------------------------------------------------------------
# match_edges


def test_match_edges_line_within_tolerance_matches_completely():
    truth = _mask((20, 20), [(r, 8) for r in range(3, 15)])
    prediction = _mask((20, 20), [(r, 9) for r in range(3, 15)])
    matched_prediction, matched_truth = match_edges(prediction, truth, max_distance=2)
    assert (matched_prediction == prediction).all() and (matched_truth == truth).all()


def test_match_edges_line_beyond_tolerance_matches_nothing():
    truth = _mask((20, 20), [(r, 8) for r in range(3, 15)])
    prediction = _mask((20, 20), [(r, 11) for r in range(3, 15)])
    matched_prediction, matched_truth = match_edges(prediction, truth, max_distance=2)
    assert not matched_prediction.any() and not matched_truth.any()


def test_match_edges_is_one_to_one():
    truth = _mask((9, 9), [(4, 4)])
    prediction = _mask((9, 9), [(4, 3), (4, 5)])
    matched_prediction, matched_truth = match_edges(prediction, truth, max_distance=1.5)
    assert matched_prediction.sum() == 1 and matched_truth.sum() == 1
    assert matched_truth[4, 4]


def test_match_edges_longer_prediction_leaves_the_excess_unmatched():
    truth = _mask((20, 12), [(r, 5) for r in range(5, 10)])  # 5 pixels
    prediction = _mask((20, 12), [(r, 6) for r in range(2, 13)])  # 11 pixels
    matched_prediction, matched_truth = match_edges(prediction, truth, max_distance=1.5)
    assert matched_truth.sum() == 5 and matched_prediction.sum() == 5
    # the cheapest pairs are the side by side ones (distance 1): predicted rows 5 .. 9
    assert matched_prediction[:, 6].nonzero()[0].tolist() == [5, 6, 7, 8, 9]


@pytest.mark.parametrize(
    "offset, max_distance, matched",
    [
        ((2, 2), 2.5, False),  # 2.83 > 2.5
        ((1, 2), 2.5, True),  # 2.24
        ((0, 2), 2.0, True),  # exactly on the radius counts
        ((1, 2), 2.2, False),  # 2.24 > 2.2
    ],
)
def test_match_edges_uses_euclidean_distance(offset, max_distance, matched):
    truth = _mask((12, 12), [(5, 5)])
    prediction = _mask((12, 12), [(5 + offset[0], 5 + offset[1])])
    matched_prediction, matched_truth = match_edges(prediction, truth, max_distance)
    assert matched_prediction.any() == matched and matched_truth.any() == matched


def test_match_edges_parallel_boundaries_ladder():
    # Two predicted lines either side of a truth line make a ladder-shaped graph (the pathological case for
    # a depth-first matcher); exactly one predicted pixel per truth pixel can be matched.
    truth = _mask((9, 300), [(4, c) for c in range(300)])
    prediction = _mask((9, 300), [(r, c) for r in (3, 5) for c in range(300)])
    matched_prediction, matched_truth = match_edges(prediction, truth, max_distance=1.5)
    assert (matched_truth == truth).all()
    assert matched_prediction.sum() == 300


def test_match_edges_pairs_the_cheapest_pixels_not_just_as_many():
    # Truth (0, 1), (0, 2); predicted (0, 0), (0, 1), (0, 2); radius 1.5. Every maximum matching has 2 pairs:
    # {p1-t1, p2-t2} costs 0, {p0-t1, p2-t2} 1 px, {p0-t1, p1-t2} 2 px. correspondPixels takes the first.
    truth = _mask((3, 5), [(0, 1), (0, 2)])
    prediction = _mask((3, 5), [(0, 0), (0, 1), (0, 2)])
    matched_prediction, matched_truth = match_edges(prediction, truth, max_distance=1.5)
    assert (matched_truth == truth).all()
    assert (matched_prediction == truth).all()


def test_match_edges_breaks_ties_by_seed():
    # (2, 1) and (2, 3) are equally close to the truth pixel (2, 2): each seed pairs one of them, and as CSA's
    # random choice, different seeds pick either.
    truth = _mask((5, 5), [(2, 2)])
    prediction = _mask((5, 5), [(2, 1), (2, 3)])
    picks = set()
    for seed in range(16):
        matched_prediction, matched_truth = match_edges(prediction, truth, max_distance=1.5, seed=seed)
        assert matched_truth[2, 2] and matched_prediction.sum() == 1
        assert (match_edges(prediction, truth, max_distance=1.5, seed=seed)[0] == matched_prediction).all()
        picks.add(tuple(np.argwhere(matched_prediction)[0]))
    assert picks == {(2, 1), (2, 3)}


@pytest.mark.parametrize("length, pairs", [(50, 50), (99, 99), (101, 100), (150, 149)])
def test_match_edges_leaves_a_pair_out_when_growing_costs_more_than_an_outlier(length, pairs):
    # Truth on columns 1 .. L of a row, the prediction on columns 0 .. L - 1, radius 1: an unpaired pixel costs
    # 100 radii = 10000 (hundredths of a pixel). All L pixels pair only by shifting every pair by one pixel
    # (L x 100); pairing the L - 1 coincident pixels (cost 0) leaves one pixel of each side out (one more
    # outlier on each side, one fewer outlier-outlier pair: 10000 more). Shifting wins while L x 100 < 10000.
    length = int(length)
    truth = _mask((3, length + 2), [(1, c) for c in range(1, length + 1)])
    prediction = _mask((3, length + 2), [(1, c) for c in range(length)])
    matched_prediction, matched_truth = match_edges(prediction, truth, max_distance=1.0)
    assert matched_prediction.sum() == matched_truth.sum() == pairs
    if pairs < length:
        assert not matched_prediction[1, 0] and not matched_truth[1, length]


def _official_cost(prediction, truth, max_distance):
    """The least cost of correspondPixels' graph, as a dense square assignment: n1 predicted and n2 truth pixels
    each pair within the radius at rint(100 d) or go to an outlier node; outliers pair with each other too."""
    p, t = np.argwhere(prediction), np.argwhere(truth)
    n1, n2 = len(p), len(t)
    outlier = math.ceil(100 * 100 * max_distance)
    distance = np.hypot(*(p[:, None, :] - t[None, :, :]).transpose(2, 0, 1))
    cost = np.full((n1 + n2, n1 + n2), 10.0**9)
    cost[:n1, :n2] = np.where(distance <= max_distance, np.rint(100 * distance), 10.0**9)
    cost[:n1, n2:] = outlier
    cost[n1:, :n2] = outlier
    cost[n1:, n2:] = outlier
    rows, cols = linear_sum_assignment(cost)
    return cost[rows, cols].sum()


def test_match_edges_reaches_the_least_cost_of_the_official_graph():
    # Random clusters of pixels, small enough for the dense solver and large enough for the sparse one.
    rng = np.random.default_rng(0)
    for size, dense_limit in [(12, 40_000), (12, 0), (30, 0)]:
        for _ in range(6):
            prediction = rng.random((size, size)) < 0.3
            truth = rng.random((size, size)) < 0.2
            max_distance = float(rng.choice([1.0, 1.5, 2.3]))
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(boundaries, "_DENSE_LIMIT", dense_limit)
                matched_prediction, matched_truth = match_edges(prediction, truth, max_distance)
            assert matched_prediction.sum() == matched_truth.sum()
            # The counts depend on which pixels are paired: pairing just those (with every other pixel an
            # outlier) must cost the official graph's least cost.
            pairs = int(matched_truth.sum())
            outlier = math.ceil(100 * 100 * max_distance)
            paired_only = _official_cost(matched_prediction, matched_truth, max_distance) - pairs * outlier
            others = (prediction.sum() + truth.sum() - pairs) * outlier
            assert paired_only + others == _official_cost(prediction, truth, max_distance)


def test_match_edges_rejects_bad_input():
    with pytest.raises(DLAError, match="differs"):
        match_edges(np.zeros((4, 4)), np.zeros((4, 5)), 1)
    with pytest.raises(DLAError, match="binary"):
        match_edges(np.full((4, 4), 0.5), np.zeros((4, 4)), 1)
    empty, _ = match_edges(np.zeros((4, 4), dtype=bool), np.ones((4, 4), dtype=bool), 1)
    assert not empty.any()


# ----------------------------------------------------------------------------------------------------------
# Thinning


def test_thin_binary_reduces_a_thick_bar_to_a_connected_line():
    bar = np.zeros((9, 16), dtype=bool)
    bar[3:6, 2:14] = True
    thinned = thin_binary(bar)
    assert thinned.any() and not (thinned & ~bar).any()
    assert thinned.sum(axis=0).max() == 1  # one pixel wide
    assert ndimage.label(thinned, structure=np.ones((3, 3)))[1] == 1  # one 8-connected stroke
    assert bar.sum() == 36  # the input is untouched


def test_thin_binary_thins_fortran_ordered_and_transposed_maps():
    # scipy.io.loadmat returns column-major arrays; so does a transpose. They must thin as their C-ordered copies.
    rng = np.random.default_rng(1)
    blobs = ndimage.binary_dilation(rng.random((20, 30)) < 0.05, iterations=2)
    expected = thin_binary(blobs)
    assert expected.sum() < blobs.sum()
    for fortran in (np.asfortranarray(blobs), np.ascontiguousarray(blobs.T).T):  # a column-major copy, a transposed view
        assert (thin_binary(fortran) == expected).all()
    assert (thin_binary(blobs.T) == thin_binary(np.ascontiguousarray(blobs.T))).all()


def test_thin_binary_keeps_lines_and_isolated_pixels():
    strokes = _mask((10, 10), [(2, c) for c in range(1, 9)] + [(5, 8)] + [(r, r - 2) for r in range(4, 9)])
    assert (thin_binary(strokes) == strokes).all()
    square = _mask((6, 6), [(2, 2), (2, 3), (3, 2), (3, 3)])
    assert thin_binary(square).sum() == 1


def _ridge(shape, distance, sigma=2.0):
    return np.exp(-(distance**2) / (2 * sigma**2)) * np.ones(shape)


def test_thin_edges_vertical_ridge_becomes_its_centre_column():
    cols = np.arange(40)
    probability = _ridge((30, 40), cols[None, :] - 20.0)
    thinned = thin_edges(probability)
    assert thinned.dtype == np.float32 and thinned.shape == (30, 40)
    rows, where = np.nonzero(thinned)
    assert set(where) == {20} and set(rows) == set(range(1, 29))
    # the frame: 0 on the outermost row, (distance / 5) inside the 5-pixel border, untouched beyond
    assert thinned[0, 20] == 0 and thinned[2, 20] == pytest.approx(0.4)
    assert thinned[10, 20] == pytest.approx(1.0)


def test_thin_edges_horizontal_ridge_becomes_its_centre_row():
    rows = np.arange(40)
    probability = _ridge((40, 30), rows[:, None] - 17.0)
    kept = thin_edges(probability) > 1e-3  # far tails (below 1e-19) have no orientation to speak of
    assert set(np.nonzero(kept)[0]) == {17}
    assert kept[17, 1:29].all()


def test_thin_edges_diagonal_ridge_stays_thin_and_connected():
    rows, cols = np.mgrid[:40, :40]
    probability = _ridge((40, 40), (cols - rows - 3) / math.sqrt(2))
    kept = thin_edges(probability) > 1e-3
    interior = kept[6:34]
    assert interior.sum(axis=1).min() >= 1 and interior.sum(axis=1).max() <= 2
    found_rows, found_cols = np.nonzero(kept)
    assert np.abs(found_cols - found_rows - 3).max() <= 1
    assert ndimage.label(kept, structure=np.ones((3, 3)))[1] == 1


def test_thin_edges_rejects_bad_maps():
    with pytest.raises(DLAError, match=r"\[0, 1\]"):
        thin_edges(np.full((5, 5), 2.0))
    with pytest.raises(DLAError, match="H x W"):
        thin_edges(np.zeros((2, 5, 5)))


# ----------------------------------------------------------------------------------------------------------
# image_counts


def test_image_counts_by_hand_with_two_annotators():
    # 7 x 12 image; tolerance 0.1 x diagonal 13.9 = 1.39 px: a pair may be 0 or 1 px apart, not diagonal.
    shape = (7, 12)
    annotator_a = _mask(shape, [(2, c) for c in range(1, 9)])  # 8 pixels
    annotator_b = _mask(shape, [(3, c) for c in range(1, 5)])  # 4 pixels, 1 px below A's left half
    probability = np.zeros(shape)
    probability[2, 1:5] = 0.8  # on A, and 1 px from B
    probability[2, 5:9] = 0.4  # on A; (2, 5) is 1.41 px from B's end (3, 4): too far
    probability[5, 2:5] = 0.6  # 2 px from B, 3 px from A: false positives
    expected = [
        # t = 0.25: all 11 predicted; A matches the 8 on row 2, B its 4 from row 2's left half
        [8 + 4, 12, 8, 11],
        # t = 0.5: row 2's left half (4) and the false positives (3)
        [4 + 4, 12, 4, 7],
        # t = 0.75: row 2's left half only
        [4 + 4, 12, 4, 4],
    ]
    for thin in (True, False):
        counts = image_counts(probability, [annotator_a, annotator_b], thresholds=3, tolerance=0.1, thin=thin)
        assert counts.dtype == np.int64 and counts.tolist() == expected


def test_image_counts_pairs_each_threshold_at_least_cost():
    # 7 x 9 image; tolerance 0.15 x diagonal 11.4 = 1.71 px. Annotator A marks (3, 3), annotator B (3, 5).
    # A confident pixel (3, 4), 1 px from both, and a faint one (3, 3) on A, 2 px from B (too far).
    # At 0.5 and 0.75 only (3, 4) is predicted: both annotators pair with it (cntP 1 of 1). At 0.25 the
    # cheapest pairing gives A its coincident pixel and B the confident one: cntP 2 of 2 (P = 1); keeping the
    # confident pixel's partner from the higher thresholds would give 1 of 2.
    shape = (7, 9)
    annotations = [_mask(shape, [(3, 3)]), _mask(shape, [(3, 5)])]
    probability = np.zeros(shape)
    probability[3, 4], probability[3, 3] = 0.8, 0.3
    for thin in (True, False):
        counts = image_counts(probability, annotations, thresholds=3, tolerance=0.15, thin=thin)
        assert counts.tolist() == [[2, 2, 2, 2], [2, 2, 1, 1], [2, 2, 1, 1]]


def test_image_counts_thins_fortran_ordered_maps():
    rng = np.random.default_rng(2)
    probability = np.clip(ndimage.gaussian_filter(rng.random((30, 40)), 2) * 6 - 2.5, 0, 1)
    annotations = [rng.random((30, 40)) < 0.05]
    expected = image_counts(probability, annotations, thresholds=9)
    assert (image_counts(np.asfortranarray(probability), annotations, thresholds=9) == expected).all()
    benchmark = BoundaryBenchmark(thresholds=9, nms=False)
    benchmark.update(np.asfortranarray(probability), [np.asfortranarray(a) for a in annotations])
    assert (benchmark.counts[0] == expected).all()
    assert (expected[:, 3] < image_counts(probability, annotations, thresholds=9, thin=False)[:, 3]).any()


def test_image_counts_with_nms_on_a_blurred_ridge():
    # NMS leaves the centre column; the 5-pixel frame damps rows 0..4 by 0, 0.2, .., 0.8 (and the bottom
    # alike), so at the single threshold 0.5 rows 3 .. 36 remain: 34 pixels, all on the 40-pixel truth.
    probability = _ridge((40, 40), np.arange(40)[None, :] - 20.0)
    truth = _mask((40, 40), [(r, 20) for r in range(40)])
    counts = image_counts(probability, [truth], thresholds=1, nms=True)
    assert counts.tolist() == [[34, 40, 34, 34]]
    assert (image_counts(thin_edges(probability), [truth], thresholds=1) == counts).all()


def test_image_counts_agrees_with_matching_each_threshold_afresh():
    rng = np.random.default_rng(3)
    probability = np.clip(ndimage.gaussian_filter(rng.random((30, 40)), 1.2) * 4 - 1.6, 0, 1)
    annotations = [rng.random((30, 40)) < 0.08 for _ in range(2)]
    counts = image_counts(probability, annotations, thresholds=7, tolerance=0.05)
    radius = 0.05 * math.hypot(30, 40)
    for row, level in zip(counts, boundary_thresholds(7), strict=True):
        prediction = thin_binary(probability >= level)
        matched = [match_edges(prediction, truth, radius, seed=k) for k, truth in enumerate(annotations)]
        assert row[0] == sum(int(truth_hits.sum()) for _, truth_hits in matched)
        assert row[1] == sum(int(truth.sum()) for truth in annotations)
        assert row[2] == np.logical_or.reduce([hits for hits, _ in matched]).sum()
        assert row[3] == prediction.sum()


def test_image_counts_rejects_bad_annotations():
    probability = np.zeros((6, 6))
    with pytest.raises(DLAError, match="wrap a single mask"):
        image_counts(probability, np.zeros((6, 6), dtype=bool))
    with pytest.raises(DLAError, match="at least one"):
        image_counts(probability, [])
    with pytest.raises(DLAError, match="shape"):
        image_counts(probability, [np.zeros((6, 7), dtype=bool)])


# ----------------------------------------------------------------------------------------------------------
# Scores


def test_thresholds_and_f_measure():
    thresholds = boundary_thresholds()
    assert thresholds.size == 99 and thresholds[0] == pytest.approx(0.01) and thresholds[-1] == pytest.approx(0.99)
    assert boundary_thresholds(1).tolist() == [0.5]
    assert boundary_thresholds(3).tolist() == [0.25, 0.5, 0.75]
    with pytest.raises(DLAError):
        boundary_thresholds(0)
    assert f_measure(0.5, 1.0) == pytest.approx(2 / 3)
    assert f_measure(0.0, 0.0) == 0.0
    assert f_measure(np.array([1.0, 0.0]), np.array([1.0, 0.0])).tolist() == [1.0, 0.0]


def _line_image(values):
    """A 3 x (len + 2) image with ``values`` along row 1, and that row as the (single) annotation."""
    probability = np.zeros((3, len(values) + 2))
    probability[1, 1:-1] = values
    return probability, [probability > 0]


def test_benchmark_perfect_binary_prediction():
    benchmark = BoundaryBenchmark()
    for length in (20, 30):
        probability, truth = _line_image(np.ones(length))
        benchmark.update(probability, truth)
    result = benchmark.compute()
    assert result["ods"] == 1.0 and result["ois"] == 1.0 and result["images"] == 2
    # every threshold gives the same point (R, P) = (1, 1): a curve of one point has no area in BSDS's AP
    assert result["ap"] == 0.0


def test_benchmark_perfectly_ranked_prediction():
    # 99 truth pixels valued 0.015, 0.025, .., 0.995: at threshold k/100 the 100 - k highest remain, all on the
    # truth, so P = 1 and R = (100 - k) / 99, spanning 1/99 .. 1. AP: the grid recalls 0.02 .. 1.00 inside that
    # span, 99 points of precision 1, times 0.01.
    probability, truth = _line_image((np.arange(1, 100) + 0.5) / 100)
    benchmark = BoundaryBenchmark()
    benchmark.update(probability, truth)
    result = benchmark.compute()
    assert result["precision"] == [1.0] * 99
    assert result["recall"] == pytest.approx([(100 - k) / 99 for k in range(1, 100)])
    assert result["ods"] == 1.0 and result["ods_threshold"] == pytest.approx(0.01) and result["ois"] == 1.0
    assert result["ap"] == pytest.approx(0.99)


def test_benchmark_empty_prediction_scores_zero():
    probability, truth = _line_image(np.ones(10))
    benchmark = BoundaryBenchmark(thresholds=9)
    benchmark.update(np.zeros_like(probability), truth)
    result = benchmark.compute()
    assert result["ods"] == 0.0 and result["ois"] == 0.0 and result["ap"] == 0.0
    assert result["precision"] == [0.0] * 9 and result["recall"] == [0.0] * 9


def test_benchmark_ois_beats_ods_by_hand():
    # Image A: its 10 truth pixels at 0.6, 10 false positives at 0.3 -> best threshold 0.5 (F = 1).
    # Image B: its 10 truth pixels at 0.3 -> best threshold 0.25 (F = 1). OIS sums those: F = 1.
    a = np.zeros((5, 14))
    a[1, 2:12], a[3, 2:12] = 0.6, 0.3
    b = np.zeros((5, 14))
    b[1, 2:12] = 0.3
    truth = [_mask((5, 14), [(1, c) for c in range(2, 12)])]
    benchmark = BoundaryBenchmark(thresholds=3)
    benchmark.update(a, truth)
    benchmark.update(b, truth)
    assert benchmark.counts.tolist() == [
        [[10, 10, 10, 20], [10, 10, 10, 10], [0, 10, 0, 0]],
        [[10, 10, 10, 10], [0, 10, 0, 0], [0, 10, 0, 0]],
    ]
    result = benchmark.compute()
    assert result["ois"] == 1.0 and result["ois_precision"] == 1.0 and result["ois_recall"] == 1.0
    # dataset points (R, P): t=0.25 (1, 2/3), F 0.8; t=0.5 (0.5, 1), F 2/3; t=0.75 (0, 0). BSDS's maxF scans
    # 100 points per segment; on the first, R = 1 - d/2 and P = 2/3 + d/3 give F(d) = (8 - 2 d^2) / (10 - d),
    # best at d = 20/99 on that grid: above the best threshold's 0.8.
    d = 20 / 99
    assert result["f"] == pytest.approx([0.8, 2 / 3, 0.0])
    assert result["ods"] == pytest.approx((8 - 2 * d**2) / (10 - d)) and result["ods"] > 0.808
    assert result["ods_threshold"] == pytest.approx(0.25 + 0.25 * d)
    assert result["ods_recall"] == pytest.approx(1 - d / 2) and result["ods_precision"] == pytest.approx(2 / 3 + d / 3)
    # AP: distinct recalls 0, 0.5, 1 with precisions 0, 1, 2/3: sum over 0:0.01:0.5 of 2g is 25.5, over
    # 0.51:0.01:1 of 1 - (g - 0.5) * 2/3 is 41.5; (25.5 + 41.5) * 0.01
    assert result["ap"] == pytest.approx(0.67)


def test_benchmark_ois_takes_the_lowest_of_tied_thresholds():
    # One image, F = 2/3 at both thresholds: (R, P) = (1, 1/2) at 0.25 and (1/2, 1) at 0.75. BSDS sums the
    # counts at ff(1) of ff = find(F == max(F)), the lowest threshold.
    counts = np.array([[[2, 2, 2, 4], [1, 2, 1, 1]]])
    result = boundary_scores(counts, np.array([0.25, 0.75]))
    assert result["ois"] == pytest.approx(2 / 3)
    assert result["ois_recall"] == 1.0 and result["ois_precision"] == 0.5


def test_benchmark_precision_and_recall_move_monotonically():
    # 50 truth pixels valued 0.505 .. 0.995, 48 false positives (two rows away; tolerance < 1 px) valued
    # 0.015 .. 0.485: raising the threshold drops only false positives below 0.5, only truth pixels above
    probability = np.zeros((5, 60))
    probability[1, 5:55] = np.linspace(0.505, 0.995, 50)
    probability[3, 5:53] = np.linspace(0.015, 0.485, 48)
    benchmark = BoundaryBenchmark()
    benchmark.update(probability, [probability >= 0.5])
    result = benchmark.compute()
    precision, recall = np.array(result["precision"]), np.array(result["recall"])
    assert (np.diff(precision) >= 0).all() and (np.diff(recall) <= 0).all()
    assert precision[0] == pytest.approx(50 / 98) and recall[0] == 1.0 and precision[-1] == 1.0
    assert result["ois"] == result["ods"] == 1.0


def test_benchmark_rejects_misuse():
    with pytest.raises(DLAError, match="no images"):
        BoundaryBenchmark().compute()
    with pytest.raises(DLAError, match="N x T x 4"):
        boundary_scores(np.zeros((1, 5, 4)), boundary_thresholds(4))
    benchmark = BoundaryBenchmark(thresholds=3)
    probability, truth = _line_image(np.ones(5))
    benchmark.update(probability, truth)
    benchmark.reset()
    assert benchmark.counts.shape == (0, 3, 4)
