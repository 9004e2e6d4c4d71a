"""Top-k accuracy and its accumulator against hand-counted hits."""

import math

import pytest
import torch

from dla.errors import DLAError
from dla.metrics import AccuracyMeter, topk_accuracy

LOGITS = torch.tensor(
    [
        [0.9, 0.1, 0.0, 0.0],  # target 0: top-1 hit
        [0.5, 0.3, 0.2, 0.0],  # target 1: second, top-2 hit
        [0.5, 0.3, 0.2, 0.0],  # target 3: last, miss
        [0.1, 0.2, 0.3, 0.4],
    ]
)  # target 3: top-1 hit
TARGET = torch.tensor([0, 1, 3, 3])


def test_topk_accuracy_by_hand():
    assert topk_accuracy(LOGITS, TARGET, ks=(1, 2, 4)) == pytest.approx({"top1": 2 / 4, "top2": 3 / 4, "top4": 1.0})


def test_meter_over_batches_equals_the_whole():
    meter = AccuracyMeter(ks=(1, 2))
    meter.update(LOGITS[:1], TARGET[:1])
    meter.update(LOGITS[1:], TARGET[1:])
    meter.all_reduce()  # no process group: no-op
    assert meter.compute() == pytest.approx({"top1": 2 / 4, "top2": 3 / 4})
    meter.reset()
    assert math.isnan(meter.compute()["top1"])


def test_k_beyond_class_count_raises():
    with pytest.raises(DLAError, match="top-5"):
        topk_accuracy(LOGITS, TARGET)  # default ks=(1, 5) with 4 classes


def test_bad_shapes_raise():
    with pytest.raises(DLAError, match="N x C"):
        topk_accuracy(LOGITS, TARGET[:2], ks=(1,))
