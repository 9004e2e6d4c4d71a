"""Semantic segmentation scores: the confusion matrix, IoU and accuracies, and a printable table.

Everything derives from one ``C x C`` confusion matrix of pixel counts (rows: ground truth, columns:
prediction), so evaluating a dataset means summing matrices: over batches (``ConfusionMatrix.update``),
over accumulators (``merge``) and over processes (``all_reduce``), then scoring once (``compute``).

Which classes count. A class neither in the ground truth nor in the prediction (union 0) has no IoU: it is
NaN in ``iou`` and left out of ``miou``, so a validation subset that happens to lack a class is not
penalised for it. A class only predicted (union > 0, intersection 0) has IoU 0 and *does* count: the
false positives are real errors. Per-class accuracy (recall) is defined for classes in the ground truth
only, and ``mean_accuracy`` averages over those. With no pixels counted at all every score is NaN.
"""

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from ..constants import IGNORE_INDEX
from ..distributed import all_reduce_sum
from ..errors import DLAError


def _check_range(values: Tensor, num_classes: int, what: str) -> None:
    """Raise when ``values`` (class indices) has anything outside ``0 .. num_classes - 1``."""
    bad = values[(values < 0) | (values >= num_classes)]
    if bad.numel():
        examples = bad.unique()[:5].tolist()
        raise DLAError(
            f"{what} has values outside 0..{num_classes - 1} (e.g. {examples}); check num_classes or the label encoding"
        )


def confusion_matrix(pred: Tensor, target: Tensor, num_classes: int, ignore_index: int = IGNORE_INDEX) -> Tensor:
    """Pixel counts ``M[t, p]`` of ground truth class ``t`` predicted as ``p``.

    Args:
        pred: class indices, any shape (e.g. ``N x H x W``).
        target: class indices of the same shape; pixels equal to ``ignore_index`` are skipped.
        num_classes: ``C``.
    Returns:
        an int64 ``C x C`` tensor on ``target``'s device (rows: ground truth, columns: prediction).
    Raises:
        DLAError: on a shape mismatch, floating-point inputs, or a (non-ignored) target or prediction
        outside ``0 .. C - 1``; silently counting such a pixel in a wrong cell would corrupt every score.
    """
    if num_classes < 1:
        raise DLAError(f"num_classes must be positive, got {num_classes}")
    if pred.shape != target.shape:
        raise DLAError(f"prediction shape {tuple(pred.shape)} differs from target shape {tuple(target.shape)}")
    if pred.is_floating_point() or target.is_floating_point():
        raise DLAError("confusion_matrix takes class indices; take the argmax of logits first")
    keep = target != ignore_index
    truth, guess = target[keep].long(), pred[keep].long()
    _check_range(truth, num_classes, "target")
    _check_range(guess, num_classes, "prediction")
    counts = torch.bincount(truth * num_classes + guess, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def _ratio(numerator: Tensor, denominator: Tensor) -> Tensor:
    """``numerator / denominator`` elementwise, NaN where the (count) denominator is 0."""
    return torch.where(denominator > 0, numerator / denominator.clamp_min(1), torch.full_like(numerator, math.nan))


def segmentation_scores(matrix: Tensor) -> dict[str, Any]:
    """Scores of a ``C x C`` confusion matrix (rows: ground truth), as plain Python numbers.

    Returns a dict with ``miou``, ``iou`` (list of C, NaN for classes absent from ground truth and
    prediction), ``pixel_accuracy``, ``mean_accuracy``, ``accuracy`` (list of C per-class recall, NaN for
    classes absent from ground truth) and ``confusion`` (the matrix as nested lists of ints). Fractions in
    [0, 1]; see the module docstring for which classes enter the means.
    """
    if matrix.dim() != 2 or matrix.shape[0] != matrix.shape[1]:
        raise DLAError(f"a confusion matrix is square, got shape {tuple(matrix.shape)}")
    counts = matrix.detach().to("cpu", torch.float64)
    hits, truth, predicted = counts.diag(), counts.sum(1), counts.sum(0)
    iou = _ratio(hits, truth + predicted - hits)
    accuracy = _ratio(hits, truth)
    return {
        "miou": torch.nanmean(iou).item(),
        "iou": iou.tolist(),
        "pixel_accuracy": _ratio(hits.sum(), counts.sum()).item(),
        "mean_accuracy": torch.nanmean(accuracy).item(),
        "accuracy": accuracy.tolist(),
        "confusion": matrix.tolist(),
    }


class ConfusionMatrix:
    """Accumulates a confusion matrix over batches, accumulators and processes; scores it with ``compute``.

    The matrix lives on the device of the last ``update`` (so ``all_reduce`` works with NCCL or Gloo).
    """

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX) -> None:
        if num_classes < 1:
            raise DLAError(f"num_classes must be positive, got {num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.reset()

    def reset(self) -> None:
        """Forget every pixel counted so far."""
        self._matrix = torch.zeros(self.num_classes, self.num_classes, dtype=torch.int64)

    @property
    def matrix(self) -> Tensor:
        """A copy of the ``C x C`` int64 counts (rows: ground truth, columns: prediction)."""
        return self._matrix.clone()

    def _add(self, counts: Tensor) -> None:
        self._matrix = self._matrix.to(counts.device) + counts

    def update(self, pred: Tensor, target: Tensor) -> None:
        """Count a batch.

        Args:
            pred: class indices shaped like ``target`` (``N x H x W``), or logits/probabilities with one more
                dimension, classes on dim 1 (``N x C x H x W``), reduced by argmax.
            target: ``N x H x W`` class indices or ``ignore_index``.
        """
        if pred.dim() == target.dim() + 1:
            if pred.shape[1] != self.num_classes:
                raise DLAError(f"logits have {pred.shape[1]} channels, expected num_classes={self.num_classes}")
            pred = pred.argmax(dim=1)
        self._add(confusion_matrix(pred, target, self.num_classes, self.ignore_index))

    def merge(self, other: "ConfusionMatrix") -> "ConfusionMatrix":
        """Add ``other``'s counts to these (e.g. from another data split or worker); returns ``self``."""
        if (other.num_classes, other.ignore_index) != (self.num_classes, self.ignore_index):
            raise DLAError(
                f"cannot merge a ConfusionMatrix of {other.num_classes} classes "
                f"(ignore {other.ignore_index}) into one of {self.num_classes} classes "
                f"(ignore {self.ignore_index})"
            )
        self._add(other._matrix.to(self._matrix.device))
        return self

    def all_reduce(self) -> None:
        """Sum the counts over all ``torch.distributed`` processes (a no-op without a process group)."""
        all_reduce_sum(self._matrix)

    def compute(self) -> dict[str, Any]:
        """The scores of the counts so far; see ``segmentation_scores``."""
        return segmentation_scores(self._matrix)


def format_percent(value: float | None) -> str:
    """``value`` (a fraction) as a percentage with two decimals; ``-`` for an undefined (NaN/None) score."""
    return "-" if value is None or math.isnan(value) else f"{100 * value:.2f}"


def format_table(result: Mapping[str, Any], classes: Sequence[str]) -> str:
    """A plain-text table of ``compute()``'s result: one row per class (name, IoU %, accuracy %), then the
    mIoU, pixel accuracy and mean accuracy. Undefined scores (absent classes) are shown as ``-``.
    """
    missing = [key for key in ("iou", "accuracy", "miou", "pixel_accuracy", "mean_accuracy") if key not in result]
    if missing:
        raise DLAError(f"result lacks {missing}; pass the dict that ConfusionMatrix.compute() returns")
    if len(classes) != len(result["iou"]):
        raise DLAError(f"{len(classes)} class names for {len(result['iou'])} classes of scores")
    width = max(len("pixel acc"), *(len(name) for name in classes))
    header = f"{'class':<{width}}  {'IoU %':>7}  {'acc %':>7}"
    rows = [
        f"{name:<{width}}  {format_percent(iou):>7}  {format_percent(acc):>7}"
        for name, iou, acc in zip(classes, result["iou"], result["accuracy"], strict=True)
    ]
    totals = [
        f"{label:<{width}}  {format_percent(result[key]):>7}"
        for label, key in (("mIoU", "miou"), ("pixel acc", "pixel_accuracy"), ("mean acc", "mean_accuracy"))
    ]
    rule = "-" * len(header)
    return "\n".join([header, rule, *rows, rule, *totals])
