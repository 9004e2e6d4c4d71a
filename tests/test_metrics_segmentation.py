"""Segmentation metrics against confusion matrices and scores computed by hand."""

import math

import pytest
import torch
import torch.distributed as dist

from dla.errors import DLAError
from dla.metrics import ConfusionMatrix, confusion_matrix, format_table

# 3 classes; the last pixel is ignored (its prediction 2 must not be counted).
TARGET_3 = torch.tensor([[0, 0, 1], [1, 2, 255]])
PRED_3 = torch.tensor([[0, 1, 1], [1, 0, 2]])
# rows: ground truth, columns: prediction
MATRIX_3 = [[1, 1, 0], [0, 2, 0], [1, 0, 0]]

# 4 classes: class 2 is only predicted (IoU 0, counted), class 3 appears nowhere (NaN, not counted).
TARGET_4 = torch.tensor([[0, 0, 1], [1, 1, 0]])
PRED_4 = torch.tensor([[0, 2, 1], [1, 1, 0]])
MATRIX_4 = [[2, 0, 1, 0], [0, 3, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]


def test_confusion_matrix_by_hand_skips_ignored_pixels():
    matrix = confusion_matrix(PRED_3, TARGET_3, num_classes=3)
    assert matrix.dtype == torch.int64
    assert matrix.tolist() == MATRIX_3


def test_scores_by_hand():
    meter = ConfusionMatrix(3)
    meter.update(PRED_3, TARGET_3)
    result = meter.compute()
    assert result["iou"] == pytest.approx([1 / 3, 2 / 3, 0.0])
    assert result["miou"] == pytest.approx(1 / 3)
    assert result["pixel_accuracy"] == pytest.approx(3 / 5)
    assert result["accuracy"] == pytest.approx([1 / 2, 1.0, 0.0])
    assert result["mean_accuracy"] == pytest.approx(1 / 2)
    assert result["confusion"] == MATRIX_3


def test_absent_class_is_nan_and_predicted_only_class_counts():
    meter = ConfusionMatrix(4)
    meter.update(PRED_4, TARGET_4)
    result = meter.compute()
    assert meter.matrix.tolist() == MATRIX_4
    iou = result["iou"]
    assert iou[:3] == pytest.approx([2 / 3, 1.0, 0.0])
    assert math.isnan(iou[3])
    assert result["miou"] == pytest.approx(5 / 9)  # (2/3 + 1 + 0) / 3
    assert result["accuracy"][:2] == pytest.approx([2 / 3, 1.0])
    assert all(math.isnan(a) for a in result["accuracy"][2:])
    assert result["mean_accuracy"] == pytest.approx(5 / 6)
    assert result["pixel_accuracy"] == pytest.approx(5 / 6)


def test_logits_are_reduced_by_argmax():
    logits = torch.nn.functional.one_hot(PRED_4, 4).permute(2, 0, 1).float() * 3 + torch.rand(4, 2, 3)
    from_logits, from_indices = ConfusionMatrix(4), ConfusionMatrix(4)
    from_logits.update(logits.unsqueeze(0), TARGET_4.unsqueeze(0))
    from_indices.update(PRED_4, TARGET_4)
    assert from_logits.matrix.tolist() == MATRIX_4
    assert torch.equal(from_logits.matrix, from_indices.matrix)


def test_logits_with_wrong_class_count_raise():
    with pytest.raises(DLAError, match="channels"):
        ConfusionMatrix(3).update(torch.rand(1, 4, 2, 3), TARGET_3.unsqueeze(0))


def test_merge_equals_one_accumulator_over_the_concatenation():
    preds, targets = torch.randint(0, 5, (2, 3, 8, 8)), torch.randint(0, 5, (2, 3, 8, 8))
    targets[0, 0, :2] = 255
    first, second, both = ConfusionMatrix(5), ConfusionMatrix(5), ConfusionMatrix(5)
    first.update(preds[0], targets[0])
    second.update(preds[1], targets[1])
    both.update(preds.flatten(0, 1), targets.flatten(0, 1))
    assert first.merge(second) is first
    assert torch.equal(first.matrix, both.matrix)
    assert first.matrix.sum() == 2 * 3 * 64 - 16


def test_merge_of_different_class_counts_raises():
    with pytest.raises(DLAError, match="merge"):
        ConfusionMatrix(3).merge(ConfusionMatrix(4))


def test_reset_and_empty_accumulator():
    meter = ConfusionMatrix(3)
    meter.update(PRED_3, TARGET_3)
    meter.reset()
    assert meter.matrix.sum() == 0
    result = meter.compute()
    assert math.isnan(result["miou"]) and math.isnan(result["pixel_accuracy"])


@pytest.mark.parametrize("bad", [3, -1, 7])
def test_target_out_of_range_raises(bad):
    target = TARGET_3.clone()
    target[0, 0] = bad
    with pytest.raises(DLAError, match="target"):
        confusion_matrix(PRED_3, target, num_classes=3)


def test_prediction_out_of_range_and_shape_mismatch_raise():
    pred = PRED_3.clone()
    pred[0, 0] = 3
    with pytest.raises(DLAError, match="prediction"):
        confusion_matrix(pred, TARGET_3, num_classes=3)
    with pytest.raises(DLAError, match="shape"):
        confusion_matrix(PRED_3[:1], TARGET_3, num_classes=3)


def test_all_reduce_without_process_group_is_a_no_op():
    meter = ConfusionMatrix(3)
    meter.update(PRED_3, TARGET_3)
    meter.all_reduce()
    assert meter.matrix.tolist() == MATRIX_3


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed not built")
def test_all_reduce_in_a_single_process_group(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        meter = ConfusionMatrix(3)
        meter.update(PRED_3, TARGET_3)
        meter.all_reduce()
        assert meter.matrix.tolist() == MATRIX_3
    finally:
        dist.destroy_process_group()


def test_format_table_names_classes_and_dashes_absent_ones():
    meter = ConfusionMatrix(4)
    meter.update(PRED_4, TARGET_4)
    table = format_table(meter.compute(), ["road", "sky", "car", "bicycle"])
    rows = {line.split()[0]: line.split()[1:] for line in table.splitlines()}
    assert rows["road"] == ["66.67", "66.67"]
    assert rows["car"] == ["0.00", "-"]  # predicted only: IoU 0, no accuracy
    assert rows["bicycle"] == ["-", "-"]
    assert rows["mIoU"] == ["55.56"]
    assert "pixel acc" in table and "mean acc" in table


def test_format_table_with_wrong_class_count_raises():
    meter = ConfusionMatrix(4)
    meter.update(PRED_4, TARGET_4)
    with pytest.raises(DLAError, match="class names"):
        format_table(meter.compute(), ["road", "sky"])
